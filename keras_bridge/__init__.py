"""The bridge between the JSON job spec and Keras objects.

Every name and argument in a spec is resolved here against Keras itself: the
class is looked up in the Keras module, its arguments are checked against the
constructor's signature, and the object is really constructed so that Keras's
own value checks run ("Received: units=0"). The API uses it to reject bad specs
before anything is queued; the worker uses the same code to build what it
trains, so both sides agree on what a spec means.

Specs are untrusted: each object is resolved in its own namespace only
(``namespaces``), argument values and costs are checked from the JSON and from
shapes before anything is allocated (``limits``, ``budget``), and Keras's global
configuration is put back before each check and each job (``global_state``).

Importing this package imports Keras (and its backend); ``models`` never does.
"""

from keras_bridge.errors import SpecError, SpecIssue

__all__ = ["SpecError", "SpecIssue"]

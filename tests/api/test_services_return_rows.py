"""The rule of api/services/__init__.py: services return rows and plain values, never API schemas."""

import importlib
import inspect
import pkgutil
import typing

from pydantic import BaseModel

import api.services


def _schema_types(annotation: object) -> list[type]:
    found = [annotation] if isinstance(annotation, type) and issubclass(annotation, BaseModel) else []
    for arg in typing.get_args(annotation):
        found += _schema_types(arg)
    origin = typing.get_origin(annotation)
    return found + ([origin] if isinstance(origin, type) and issubclass(origin, BaseModel) else [])


def test_no_service_function_returns_an_api_schema():
    checked = 0
    for module_info in pkgutil.iter_modules(api.services.__path__):
        module = importlib.import_module(f"api.services.{module_info.name}")
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ != module.__name__ or name.startswith("_"):
                continue
            returned = typing.get_type_hints(function).get("return")
            assert not _schema_types(returned), f"{module.__name__}.{name} returns {returned}"
            checked += 1
    assert checked >= 15  # the walk found the services

# Trainyard image: the same image runs every process (`trainyard api|worker|migrate|serve`).
#   docker build -t trainyard:cpu .
#   docker build -t trainyard:gpu --build-arg TF_VARIANT=gpu .
FROM python:3.11-slim

# `cpu` installs tensorflow-cpu, `gpu` the CUDA build (tensorflow[and-cuda]): extras of pyproject.toml.
ARG TF_VARIANT=cpu

# NVIDIA_DRIVER_CAPABILITIES is only read by the NVIDIA container runtime: it exposes the CUDA
# libraries and nvidia-smi (`trainyard worker --gpus auto` counts GPUs with it).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TRAINYARD_DATA_DIR=/var/lib/trainyard \
    TRAINYARD_ARTIFACT_ROOT=/artifacts \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

WORKDIR /app

# Dependencies first, read from pyproject.toml: this (large) layer is rebuilt only when
# pyproject.toml or TF_VARIANT change, not on every source edit.
COPY pyproject.toml ./
RUN python -c "import os, tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies'][os.environ['TF_VARIANT']]))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then the project itself; every requirement is already satisfied, so this only installs trainyard.
COPY . .
RUN pip install ".[${TF_VARIANT}]" \
    && rm -rf build *.egg-info

# Unprivileged user; the data and artifact folders belong to it, so named volumes mounted
# there start out writable by it.
RUN useradd --create-home --uid 1000 --user-group trainyard \
    && mkdir -p /var/lib/trainyard /artifacts \
    && chown trainyard:trainyard /var/lib/trainyard /artifacts
USER trainyard

EXPOSE 8000
CMD ["trainyard", "api", "--host", "0.0.0.0", "--port", "8000"]

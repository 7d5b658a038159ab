# uptimed in a container (BuildKit, the default builder since Docker 23). The
# config is a mounted file, readable by uid 10001:
#   docker build -t uptimed .
#   docker run -v "$PWD/uptimed.toml:/etc/uptimed/uptimed.toml:ro" -p 8080:8080 uptimed
# Set [api] host = "0.0.0.0" in that file to reach the API from outside the
# container; secrets come best from the environment (UPTIMED_DATABASE__DSN=...).
# Channel plugins: FROM uptimed, USER root, RUN pip install --no-cache-dir
# uptimed-ntfy, USER 10001:10001.
# deploy/compose.yaml runs it with PostgreSQL, Redis and Kafka.

ARG PYTHON_VERSION=3.11

# The wheel of uptimed and of every dependency, so the final stage installs
# offline and needs no compiler.
FROM python:${PYTHON_VERSION}-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md schema.sql ./
COPY migrations ./migrations
COPY uptimed ./uptimed
RUN pip wheel --wheel-dir /wheels .

FROM python:${PYTHON_VERSION}-slim
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UPTIMED_CONFIG=/etc/uptimed/uptimed.toml
RUN groupadd --system --gid 10001 uptimed \
 && useradd --system --uid 10001 --gid uptimed --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin uptimed \
 && mkdir -p /etc/uptimed
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels uptimed
# Numeric, so that runAsNonRoot-style checks can see it is not root.
USER 10001:10001
EXPOSE 8080
# python:*-slim has no curl: the standard library asks /healthz (the port of [api]).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]
# SIGTERM drains for up to 20 s: give `docker stop` more (-t 30, or stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["uptimed"]
CMD ["run", "-c", "/etc/uptimed/uptimed.toml"]

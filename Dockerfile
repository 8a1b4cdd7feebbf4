# vecsched container image.
# Build stage: a wheel of vecsched and wheels of its runtime dependencies.
# Final stage: the slim Python base, the installed wheels, no compilers, a
# numeric non-root user, and the `vecsched` console script as entrypoint.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md ./
COPY scheduler/ scheduler/
COPY scoring/ scoring/
COPY benchmarks/ benchmarks/
RUN pip wheel --wheel-dir /wheels .

FROM python:${PYTHON_VERSION}-slim
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /wheels /wheels
# Install the wheel built above by its path: exactly that build, no version to keep in
# step with pyproject.toml, and dependencies only from /wheels (hadolint DL3013 is met).
RUN pip install --no-index --find-links=/wheels /wheels/vecsched-*.whl && rm -rf /wheels
# 65532 is the conventional "nonroot" uid of distroless images; runAsNonRoot in
# deploy/ checks that the uid is numeric and not 0.
USER 65532:65532
# 10259: `vecsched run` metrics and probes; 8888: `vecsched extender`; 9443: `vecsched webhook`.
EXPOSE 10259 8888 9443
ENTRYPOINT ["vecsched"]
CMD ["run"]

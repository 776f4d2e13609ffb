"""Declaring jobs once: name, family, timeout, retry policy and argument types.

``@job(family="email")`` on an ``async def f(ctx: JobContext, *, a: int, b: str = "x")``
registers a :class:`JobSpec`. Producers look jobs up by name to route and validate them;
workers use the same spec to validate again and to run the job.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, create_model

from jobs.constants import queue_name
from jobs.errors import JobArgumentsError, UnknownJobError
from jobs.families import is_family, load_family_modules
from jobs.retry import RetryPolicy
from jobs.storable import unstorable_values

__all__ = ["JobSpec", "all_jobs", "get_job", "job", "jobs_of_family", "mask_secret_names"]

JobFunction = Callable[..., Awaitable[Any]]
F = TypeVar("F", bound=JobFunction)

_REGISTRY: dict[str, JobSpec] = {}

#: Argument names whose values are masked wherever arguments are recorded.
SECRET_NAME_HINTS = ("password", "secret", "token", "api_key", "apikey", "authorization")


@dataclass(frozen=True)
class JobSpec:
    """Everything the runtime knows about one job."""

    name: str
    family: str
    function: JobFunction
    arguments: type[BaseModel]
    timeout: float | None
    retry: RetryPolicy
    secret_arguments: frozenset[str] = field(default_factory=frozenset)

    @property
    def queue(self) -> str:
        """The ARQ queue of the job's family."""
        return queue_name(self.family)

    def _model(self, kwargs: dict[str, Any]) -> BaseModel:
        try:
            model = self.arguments.model_validate(kwargs)
        except ValidationError as error:
            raise JobArgumentsError(
                self.name, [dict(e) for e in error.errors(include_url=False, include_input=False)]
            ) from None
        unstorable = [
            {"loc": location, "msg": problem, "type": "unstorable_character"}
            for location, problem in unstorable_values(model)
        ]
        if unstorable:
            raise JobArgumentsError(self.name, unstorable)
        return model

    def validate(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Validate ``kwargs`` against the job's signature; the typed values, or an error."""
        model = self._model(kwargs)
        return {name: getattr(model, name) for name in type(model).model_fields}

    def encode(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Validate ``kwargs`` and turn them into plain data for the job payload."""
        model = self._model(kwargs)
        data: dict[str, Any] = model.model_dump(mode="json")
        for name in type(model).model_fields:
            value = getattr(model, name)
            if isinstance(value, SecretStr):
                data[name] = value.get_secret_value()
        return data

    def masked(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``kwargs`` with every secret argument's value replaced by ``"***"``."""
        return {
            key: "***" if self.is_secret_argument(key) else value for key, value in kwargs.items()
        }

    def is_secret_argument(self, key: str) -> bool:
        """Whether the value of argument ``key`` is masked wherever arguments are recorded."""
        return key in self.secret_arguments or _named_like_a_secret(key)


def _named_like_a_secret(key: str) -> bool:
    lowered = key.lower()
    return any(hint in lowered for hint in SECRET_NAME_HINTS)


def mask_secret_names(arguments: dict[Any, Any]) -> dict[Any, Any]:
    """``arguments`` of no known job, with values of names like ``password`` replaced by ``***``."""
    return {
        key: "***" if isinstance(key, str) and _named_like_a_secret(key) else value
        for key, value in arguments.items()
    }


def _argument_model(name: str, function: JobFunction) -> tuple[type[BaseModel], frozenset[str]]:
    signature = inspect.signature(function)
    hints = typing.get_type_hints(function, include_extras=True)
    parameters = list(signature.parameters.values())
    if not parameters or parameters[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        raise TypeError(f"job {name!r} must take the job context as its first argument")
    fields: dict[str, Any] = {}
    secrets = set()
    for parameter in parameters[1:]:
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise TypeError(f"job {name!r}: *args/**kwargs cannot be validated; name them")
        if parameter.name not in hints:
            raise TypeError(f"job {name!r}: argument {parameter.name!r} needs a type annotation")
        annotation = hints[parameter.name]
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[parameter.name] = (annotation, default)
        if annotation is SecretStr or annotation == SecretStr | None:
            secrets.add(parameter.name)
    model = create_model(f"{name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
    return model, frozenset(secrets)


def job(
    *,
    family: str,
    name: str | None = None,
    timeout: float | None = None,
    retry: RetryPolicy | None = None,
    secret_arguments: tuple[str, ...] = (),
) -> Callable[[F], F]:
    """Declare an async function as a job of ``family``; the function itself is unchanged.

    The first parameter receives the :class:`jobs.context.JobContext`; the others are the job's
    arguments, validated from their annotations.
    """
    if not is_family(family):
        raise ValueError(
            f"unknown family {family!r}: declare it first with jobs.declare_family({family!r})"
        )

    def register(function: F) -> F:
        if not inspect.iscoroutinefunction(cast(Any, function)):
            raise TypeError(f"{function.__qualname__} must be an async function")
        job_name = name or function.__name__
        arguments, secrets = _argument_model(job_name, function)
        spec = JobSpec(
            name=job_name,
            family=family,
            function=function,
            arguments=arguments,
            timeout=timeout,
            retry=retry or RetryPolicy(),
            secret_arguments=secrets | frozenset(secret_arguments),
        )
        existing = _REGISTRY.get(job_name)
        if existing is not None and existing.function is not function:
            raise ValueError(f"job name {job_name!r} is declared twice")
        _REGISTRY[job_name] = spec
        function.__job_spec__ = spec  # type: ignore[attr-defined]
        return function

    return register


def spec_of(function: JobFunction | JobSpec) -> JobSpec:
    """The spec of a function declared with :func:`job`."""
    if isinstance(function, JobSpec):
        return function
    spec = getattr(function, "__job_spec__", None)
    if not isinstance(spec, JobSpec):
        raise TypeError(f"{function!r} is not declared with @job")
    return spec


def get_job(name: str) -> JobSpec:
    """The job declared under ``name``; raises :class:`UnknownJobError` for any other name."""
    spec = _REGISTRY.get(name)
    if spec is None:
        load_family_modules()
        spec = _REGISTRY.get(name)
    if spec is None:
        raise UnknownJobError(name, list(_REGISTRY))
    return spec


def all_jobs() -> list[JobSpec]:
    """Every declared job of every family."""
    load_family_modules()
    return sorted(_REGISTRY.values(), key=lambda s: (s.family, s.name))


def jobs_of_family(family: str) -> list[JobSpec]:
    """The jobs declared for ``family``."""
    return [spec for spec in all_jobs() if spec.family == family]

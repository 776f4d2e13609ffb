"""Turning the service API's keyword arguments into checked values, or one clear error."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from jobs.api.errors import InvalidInputError
from jobs.storable import unstorable_values

__all__ = ["ApiModel", "checked"]

M = TypeVar("M", bound="ApiModel")


class ApiModel(BaseModel):
    """Base of the API's input models: unknown fields are refused, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def checked(model: type[M], values: dict[str, Any]) -> M:
    """``values`` validated by ``model``; InvalidInputError naming each bad field otherwise.

    Text a database cannot store (NUL, a lone surrogate) is refused here too.
    """
    try:
        parsed = model.model_validate(values)
    except ValidationError as error:
        raise InvalidInputError(
            [
                {"loc": e["loc"], "msg": str(e["msg"]).removeprefix("Value error, ")}
                for e in error.errors(include_url=False, include_input=False)
            ]
        ) from None
    unstorable = [{"loc": loc, "msg": problem} for loc, problem in unstorable_values(parsed)]
    if unstorable:
        raise InvalidInputError(unstorable)
    return parsed

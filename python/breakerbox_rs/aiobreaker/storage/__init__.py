"""aiobreaker's state storages (``aiobreaker.storage``)."""

from . import base, memory  # noqa: F401

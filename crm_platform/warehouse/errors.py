"""Which warehouse failures are worth retrying: the engine busy or out of reach for a moment, as
opposed to a wrong query or wrong data, which fail the same way every time."""
from __future__ import annotations

# ClickHouse error codes of a server that is busy, restarting or between replicas, not of a bad query.
TRANSIENT_CLICKHOUSE_CODES = frozenset({
    159,  # TIMEOUT_EXCEEDED
    202,  # TOO_MANY_SIMULTANEOUS_QUERIES
    209,  # SOCKET_TIMEOUT
    210,  # NETWORK_ERROR
    242,  # TABLE_IS_READ_ONLY (a replica lost its Keeper session)
    252,  # TOO_MANY_PARTS (merges behind inserts)
    319,  # UNKNOWN_STATUS_OF_INSERT
    999,  # KEEPER_EXCEPTION
})


class WarehouseUnavailable(RuntimeError):
    """The warehouse could not be reached or was held by another writer past the wait: retry later."""


def is_transient(error: BaseException) -> bool:
    """True when `error`, or an error it was raised from, is a transient warehouse failure."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (WarehouseUnavailable, ConnectionError, TimeoutError)):
            return True
        if _clickhouse_transient(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def _clickhouse_transient(error: BaseException) -> bool:
    try:
        from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
    except ImportError:  # pragma: no cover - clickhouse-connect is a dependency
        return False
    if isinstance(error, OperationalError):  # connection refused, reset, timed out
        return True
    code = getattr(error, "code", None)
    if isinstance(error, DatabaseError) and code is None:
        # clickhouse-connect puts the server's code in the message: "... code: 202, server response: ..."
        text = str(error)
        marker = "code: "
        if marker in text:
            digits = text.split(marker, 1)[1].split(",", 1)[0].strip()
            code = int(digits) if digits.isdigit() else None
    return code in TRANSIENT_CLICKHOUSE_CODES

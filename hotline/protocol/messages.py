"""
Messages: what a statement carries, as small frozen types that validate on creation.

Kinds (DESIGN.md section 5): ``notice`` (a movement notice, modelled on NOTAMs,
airspace control orders and the pre-formatted notices of risk-reduction centres),
``ack`` (an acknowledgement that signs the hash of the statement it answers),
``heartbeat`` and ``heartbeat-reply`` (the end-to-end line test, which also
gossips checkpoints), and ``text`` (free text).

Every field has a limit. The same limits hold when a message is built here and
when one is decoded from the network: msgspec enforces the declared constraints
while decoding, and ``Message.__post_init__`` enforces them (and the rules that
span fields) when code builds one. Times are UTC only; coordinates are WGS84
decimal degrees.
"""

from __future__ import annotations

import contextvars
import functools
import re
from datetime import datetime
from typing import Annotated, ClassVar, Final, Literal, TypeAlias, TypeVar

import msgspec
import msgspec.inspect as mi

from hotline.protocol.exceptions import DecodeError, InvalidMessage

__all__ = [
    "ACK_LEVELS",
    "DEFAULT_DEADLINES",
    "PRECEDENCES",
    "Ack",
    "Activity",
    "Area",
    "Body",
    "Circle",
    "Contact",
    "Corridor",
    "Force",
    "FreeText",
    "Heartbeat",
    "HeartbeatReply",
    "Message",
    "Notice",
    "Point",
    "Polygon",
    "Readback",
    "Text",
    "Translation",
    "Vertical",
    "Window",
    "canonical_decode",
    "decode_body",
    "encode",
    "strict_decode",
]

# --- Limits ---------------------------------------------------------------------------------------

MAX_TEXT: Final = 4000  # characters of free text in one body or translation
MAX_TRANSLATIONS: Final = 4
MAX_POINTS: Final = 100
MAX_FORCES: Final = 32
MAX_SHORT: Final = 64  # callsigns, units, officer ids, classification markings
MAX_CHECKPOINT: Final = 4096  # bytes of a gossiped checkpoint note

Short = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SHORT)]
LongText = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT)]
Comment = Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
# A language tag in the style of BCP 47 ("en", "tr", "ru", "zh-Hant").
Lang = Annotated[str, msgspec.Meta(pattern="^[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}\\Z")]
# A notice reference: upper-case letters, digits and hyphens, never reused ("TUR-2026-000123").
Ref = Annotated[str, msgspec.Meta(pattern="^[A-Z0-9][A-Z0-9-]{2,39}\\Z")]
Hash = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}\\Z")]
Latitude = Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]
Longitude = Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)]
Distance = Annotated[float, msgspec.Meta(gt=0.0, le=10000.0)]
Altitude = Annotated[float, msgspec.Meta(ge=-2000.0, le=200000.0)]

PRECEDENCES: Final = ("FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE")
ACK_LEVELS: Final = ("RECEIVED", "READ_UNDERSTOOD", "CONFLICT", "UNABLE")
# Seconds to acknowledge, by precedence (allied handling times: FLASH within 10 minutes, IMMEDIATE 30).
DEFAULT_DEADLINES: Final = {"FLASH": 600, "IMMEDIATE": 1800, "PRIORITY": 3 * 3600, "ROUTINE": 24 * 3600}

Precedence: TypeAlias = Literal["FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE"]
AckLevel: TypeAlias = Literal["RECEIVED", "READ_UNDERSTOOD", "CONFLICT", "UNABLE"]


# --- Validation on creation ----------------------------------------------------------------------


def _fail(path: str, why: str) -> InvalidMessage:
    return InvalidMessage(f"{path}: {why}")


def _check(value: object, t: mi.Type, path: str) -> None:
    """Apply the msgspec constraints of ``t`` to ``value``, as decoding would."""
    if isinstance(t, mi.UnionType):
        for option in t.types:
            try:
                _check(value, option, path)
            except InvalidMessage:
                continue
            return
        raise _fail(path, "is none of the allowed types")
    if isinstance(t, mi.NoneType):
        if value is not None:
            raise _fail(path, "must be null")
    elif isinstance(t, mi.LiteralType):
        if value not in t.values:
            raise _fail(path, f"must be one of {', '.join(map(str, t.values))}")
    elif isinstance(t, mi.StrType):
        if not isinstance(value, str):
            raise _fail(path, "must be text")
        _check_length(len(value), t.min_length, t.max_length, path, "characters")
        if t.pattern is not None and not _pattern(t.pattern).search(value):
            raise _fail(path, f"{value[:40]!r} does not match {t.pattern}")
    elif isinstance(t, mi.BytesType):
        if not isinstance(value, bytes):
            raise _fail(path, "must be bytes")
        _check_length(len(value), t.min_length, t.max_length, path, "bytes")
    elif isinstance(t, mi.BoolType):
        if not isinstance(value, bool):
            raise _fail(path, "must be true or false")
    elif isinstance(t, mi.IntType | mi.FloatType):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(path, "must be a number")
        if isinstance(t, mi.IntType) and not isinstance(value, int):
            raise _fail(path, "must be an integer")
        _check_range(value, t, path)
    elif isinstance(t, mi.ListType):
        if not isinstance(value, list):
            raise _fail(path, "must be a list")
        _check_length(len(value), t.min_length, t.max_length, path, "items")
        for i, item in enumerate(value):
            _check(item, t.item_type, f"{path}[{i}]")
    elif isinstance(t, mi.StructType):
        if not isinstance(value, t.cls):
            raise _fail(path, f"must be a {t.cls.__name__}")
    elif isinstance(t, mi.DateTimeType):
        _check_utc(value, path)


def _check_length(n: int, lo: int | None, hi: int | None, path: str, unit: str) -> None:
    if lo is not None and n < lo:
        raise _fail(path, f"needs at least {lo} {unit}")
    if hi is not None and n > hi:
        raise _fail(path, f"is over the limit of {hi} {unit}")


def _check_range(value: float, t: mi.IntType | mi.FloatType, path: str) -> None:
    ok = (
        (t.ge is None or value >= t.ge)
        and (t.le is None or value <= t.le)
        and (t.gt is None or value > t.gt)
        and (t.lt is None or value < t.lt)
    )
    if not ok:
        bounds = [f"{op} {b}" for op, b in ((">=", t.ge), ("<=", t.le), (">", t.gt), ("<", t.lt)) if b is not None]
        raise _fail(path, f"{value} is out of range ({', '.join(bounds)})")


def _check_utc(value: object, path: str) -> None:
    if not isinstance(value, datetime):
        raise _fail(path, "must be a date and time")
    offset = value.utcoffset()
    if offset is None or offset.total_seconds() != 0:
        raise _fail(path, "must be in UTC (end in Z)")


@functools.cache
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@functools.cache
def _datetime_fields(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in _fields(cls) if _holds_datetime(f.type))


def _holds_datetime(t: mi.Type) -> bool:
    if isinstance(t, mi.UnionType):
        return any(_holds_datetime(option) for option in t.types)
    return isinstance(t, mi.DateTimeType)


@functools.cache
def _fields(cls: type) -> tuple[mi.Field, ...]:
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return info.fields


# Set while msgspec decodes: it has already enforced the declared constraints, so only the
# rules that span fields need checking again.
_decoding: contextvars.ContextVar[bool] = contextvars.ContextVar("decoding", default=False)


class Message(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base of every message part: immutable, strict, and checked when built."""

    def __post_init__(self) -> None:
        cls = type(self)
        name = cls.__name__
        if not _decoding.get():
            for f in _fields(cls):
                value = getattr(self, f.name)
                # An int given for a float field is stored as the float that decoding would give,
                # so that a message encodes to the same bytes before and after a round trip.
                if isinstance(f.type, mi.FloatType) and type(value) is int:
                    value = float(value)
                    msgspec.structs.force_setattr(self, f.name, value)
                _check(value, f.type, f"{name}.{f.name}")
        else:
            # msgspec cannot require a UTC offset of a datetime; decoding checks it here.
            for field_name in _datetime_fields(cls):
                _check_utc(getattr(self, field_name), f"{name}.{field_name}")
        self._validate()

    def _validate(self) -> None:
        """Rules that span fields; raise ``InvalidMessage``."""


# --- Notice parts ---------------------------------------------------------------------------------


class Point(Message, frozen=True):
    """A WGS84 position in decimal degrees."""

    lat: Latitude
    lon: Longitude


class Circle(Message, frozen=True, tag="circle", tag_field="shape"):
    center: Point
    radius: Distance
    unit: Literal["NM", "KM"]


class Polygon(Message, frozen=True, tag="polygon", tag_field="shape"):
    """Boundary points in order; the last joins the first, so it is not repeated."""

    points: Annotated[list[Point], msgspec.Meta(min_length=3, max_length=MAX_POINTS)]

    def _validate(self) -> None:
        if len({(p.lat, p.lon) for p in self.points}) < 3:
            raise InvalidMessage("Polygon.points: needs at least 3 distinct points")


class Corridor(Message, frozen=True, tag="corridor", tag_field="shape"):
    """A path and a half width on each side of it (e.g. 6 km either side of a road)."""

    path: Annotated[list[Point], msgspec.Meta(min_length=2, max_length=MAX_POINTS)]
    half_width: Distance
    unit: Literal["NM", "KM"]


Area: TypeAlias = Circle | Polygon | Corridor


class Vertical(Message, frozen=True):
    """A vertical band: lower and upper limits, their unit and reference."""

    lower: Altitude
    upper: Altitude
    unit: Literal["FT", "M", "FL"]
    ref: Literal["AMSL", "AGL", "SFC", "UNL"]

    def _validate(self) -> None:
        if self.upper < self.lower:
            raise InvalidMessage("Vertical: upper limit is below lower limit")


class Window(Message, frozen=True):
    """The time window of an activity, UTC."""

    start: datetime
    end: datetime
    schedule: Annotated[str, msgspec.Meta(max_length=200)] | None = None

    def _validate(self) -> None:
        if self.end <= self.start:
            raise InvalidMessage("Window: end must be after start")


class Activity(Message, frozen=True):
    domain: Literal["AIR", "GROUND", "NAVAL", "UAV", "FIRES"]
    type: Literal["STRIKE", "PATROL", "TRANSIT", "CONVOY", "ISR", "EXERCISE", "MEDEVAC", "OTHER"]


class Force(Message, frozen=True):
    callsign: Short
    unit: Short | None = None
    platform: Short | None = None
    count: Annotated[int, msgspec.Meta(ge=1, le=100000)] = 1


class Contact(Message, frozen=True):
    """Who to call on scene."""

    callsign: Short
    frequency: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None


class Translation(Message, frozen=True):
    """A translation; the original text stays authoritative."""

    lang: Lang
    body: LongText
    translator: Short


class Text(Message, frozen=True):
    """Text in the author's language, with optional translations."""

    lang: Lang
    body: LongText
    translations: Annotated[list[Translation], msgspec.Meta(max_length=MAX_TRANSLATIONS)] = []


class FreeText(Text, frozen=True, tag="text", tag_field="kind"):
    """A free-text message between duty officers: the second channel, after structured notices."""


class Notice(Message, frozen=True, tag="notice", tag_field="kind"):
    """A movement notice. Never edited in place: AMEND and CANCEL refer to an earlier ``ref``."""

    ref: Ref
    action: Literal["NEW", "AMEND", "CANCEL"]
    mode: Literal["OPER", "EXER", "TEST"]
    precedence: Precedence
    response: Literal["INFO_ONLY", "CONFIRM_NO_CONFLICT", "REQUEST_CLEAR"]
    classification: Short
    text: Text
    refers_to: Ref | None = None
    activity: Activity | None = None
    area: Area | None = None
    vertical: Vertical | None = None
    window: Window | None = None
    forces: Annotated[list[Force], msgspec.Meta(max_length=MAX_FORCES)] = []
    contact: Contact | None = None

    # Activities that take place in the air need a vertical band.
    AIRBORNE: ClassVar[frozenset[str]] = frozenset({"AIR", "UAV", "FIRES"})

    def _validate(self) -> None:
        if self.action == "NEW":
            if self.refers_to is not None:
                raise InvalidMessage("Notice.refers_to: a NEW notice refers to nothing")
        elif self.refers_to is None:
            raise InvalidMessage(f"Notice.refers_to: {self.action} needs the ref of the notice it changes")
        elif self.refers_to == self.ref:
            raise InvalidMessage("Notice.refers_to: a notice cannot refer to itself")
        if self.action == "CANCEL":
            return
        for name in ("activity", "area", "window"):
            if getattr(self, name) is None:
                raise InvalidMessage(f"Notice.{name}: required for a {self.action} notice")
        assert self.activity is not None
        if self.activity.domain in self.AIRBORNE and self.vertical is None:
            raise InvalidMessage(f"Notice.vertical: required for {self.activity.domain} activity")


class Readback(Message, frozen=True):
    """What the reader understood: the area and window, read back so a mistake shows."""

    area: Area
    window: Window


class Ack(Message, frozen=True, tag="ack", tag_field="kind"):
    """An acknowledgement. It answers one statement, named by the SHA-256 of its exact bytes.

    None of the levels means approval: READ_UNDERSTOOD says a person read it,
    CONFLICT and UNABLE say why not (``comment`` is then required).
    """

    answers: Hash
    level: AckLevel
    ref: Ref | None = None
    readback: Readback | None = None
    officer: Short | None = None
    comment: Comment | None = None

    def _validate(self) -> None:
        if self.level in ("CONFLICT", "UNABLE") and self.comment is None:
            raise InvalidMessage(f"Ack.comment: {self.level} needs a reason")
        if self.readback is not None and self.level != "READ_UNDERSTOOD":
            raise InvalidMessage("Ack.readback: only READ_UNDERSTOOD carries a read-back")


class Heartbeat(Message, frozen=True, tag="heartbeat", tag_field="kind"):
    """An end-to-end line test. ``checkpoint`` gossips the sender's latest cosigned checkpoint."""

    probe: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{32}\\Z")]
    checkpoint: Annotated[bytes, msgspec.Meta(max_length=MAX_CHECKPOINT)] | None = None


class HeartbeatReply(Message, frozen=True, tag="heartbeat-reply", tag_field="kind"):
    answers: Hash
    probe: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{32}\\Z")]
    checkpoint: Annotated[bytes, msgspec.Meta(max_length=MAX_CHECKPOINT)] | None = None


Body: TypeAlias = Notice | Ack | Heartbeat | HeartbeatReply | FreeText

_BODY_DECODER: msgspec.json.Decoder[Body] = msgspec.json.Decoder(Body)
T = TypeVar("T")


def strict_decode(decoder: msgspec.json.Decoder[T], data: bytes, what: str) -> T:
    """Decode untrusted JSON with every limit enforced; raise ``DecodeError`` naming the faulty path."""
    token = _decoding.set(True)
    try:
        return decoder.decode(data)
    except msgspec.DecodeError as e:
        raise DecodeError(f"malformed {what}: {e}") from None
    except UnicodeDecodeError:
        # msgspec hands string bytes to Python unchecked: invalid UTF-8 surfaces here.
        raise DecodeError(f"malformed {what}: not valid UTF-8") from None
    except RecursionError:
        raise DecodeError(f"malformed {what}: nested too deeply") from None
    finally:
        _decoding.reset(token)


def encode(value: object) -> bytes:
    """Canonical JSON: fields in declaration order, no spaces, defaults omitted only where msgspec omits."""
    return msgspec.json.encode(value)


def canonical_decode(decoder: msgspec.json.Decoder[T], data: bytes, what: str) -> T:
    """Decode signed JSON, and refuse it unless it is exactly the bytes our encoder makes of it.

    Signed bytes must have one meaning for every reader: no duplicate keys (which
    parsers resolve differently), no whitespace, no alternative escapes or base64
    spellings, fields in their declared order.
    """
    value = strict_decode(decoder, data, what)
    if msgspec.json.encode(value) != data:
        raise DecodeError(f"malformed {what}: not in canonical form (fields in order, no spaces, no duplicates)")
    return value


def decode_body(data: bytes) -> Body:
    """Decode a message body from untrusted JSON; raise ``DecodeError`` with the path of the fault."""
    return strict_decode(_BODY_DECODER, data, "message")

"""Reading a notice from the command line or a JSON file, with errors that name the field and the form expected."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import typer

from hotline.protocol.exceptions import DecodeError, InvalidMessage
from hotline.protocol.messages import (
    Activity,
    Area,
    Body,
    Circle,
    Contact,
    Corridor,
    Force,
    FreeText,
    Notice,
    Point,
    Polygon,
    Text,
    Vertical,
    Window,
    decode_body,
)

__all__ = ["NoticeFields", "body_from_file", "build_notice", "parse_area", "parse_time"]

_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?Z\Z")
_DISTANCE = re.compile(r"^(\d+(\.\d+)?)(NM|KM)\Z", re.IGNORECASE)


def bad(option: str, message: str) -> typer.BadParameter:
    return typer.BadParameter(message, param_hint=option)


def parse_time(text: str, option: str) -> datetime:
    """UTC only, written with a Z: 2026-11-26T14:00Z or 2026-11-26T14:00:00Z."""
    if not _TIME.match(text):
        raise bad(option, f"{text!r} is not a UTC time like 2026-11-26T14:00Z (times are UTC, ending in Z)")
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _point(text: str, option: str) -> Point:
    try:
        lat, lon = (float(x) for x in text.split(","))
        return Point(lat=lat, lon=lon)
    except (ValueError, InvalidMessage) as e:
        raise bad(option, f"{text!r} is not a WGS84 point LAT,LON in decimal degrees ({e})") from None


def _distance(text: str, option: str) -> tuple[float, str]:
    m = _DISTANCE.match(text.strip())
    if not m:
        raise bad(option, f"{text!r} is not a distance like 10NM or 6KM")
    return float(m.group(1)), m.group(3).upper()


def parse_area(circle: str | None, polygon: str | None, corridor: str | None) -> Area | None:
    """One of: --circle LAT,LON,RADIUS; --polygon 'LAT,LON;LAT,LON;...'; --corridor 'LAT,LON;...@HALF_WIDTH'."""
    given = [x for x in (circle, polygon, corridor) if x is not None]
    if len(given) > 1:
        raise bad("--circle/--polygon/--corridor", "give one area, not several")
    try:
        if circle is not None:
            parts = circle.split(",")
            if len(parts) != 3:
                raise bad("--circle", f"{circle!r}: give LAT,LON,RADIUS with the radius's unit, e.g. 36.52,37.95,6KM")
            lat, lon, radius = parts
            value, unit = _distance(radius, "--circle")
            return Circle(center=_point(f"{lat},{lon}", "--circle"), radius=value, unit=unit)  # type: ignore[arg-type]
        if polygon is not None:
            return Polygon(points=[_point(p, "--polygon") for p in polygon.split(";")])
        if corridor is not None:
            path, sep, width = corridor.partition("@")
            if not sep:
                raise bad("--corridor", "give the half width after '@', e.g. '36.1,37.2;36.3,37.6@6KM'")
            value, unit = _distance(width, "--corridor")
            points = [_point(p, "--corridor") for p in path.split(";")]
            return Corridor(path=points, half_width=value, unit=unit)  # type: ignore[arg-type]
    except ValueError as e:
        if isinstance(e, typer.BadParameter):
            raise
        raise bad("--circle/--polygon/--corridor", str(e)) from None
    return None


def _force(text: str) -> Force:
    """CALLSIGN[/UNIT[/PLATFORM[/COUNT]]]"""
    parts = text.split("/")
    try:
        count = int(parts[3]) if len(parts) > 3 else 1
        return Force(
            callsign=parts[0],
            unit=parts[1] if len(parts) > 1 and parts[1] else None,
            platform=parts[2] if len(parts) > 2 and parts[2] else None,
            count=count,
        )
    except (ValueError, InvalidMessage) as e:
        raise bad("--force", f"{text!r}: give CALLSIGN[/UNIT[/PLATFORM[/COUNT]]] ({e})") from None


class NoticeFields(msgspec.Struct, kw_only=True):
    """The options of ``hotline send`` that make a notice."""

    ref: str
    action: str
    refers_to: str | None
    mode: str
    precedence: str
    response: str
    domain: str | None
    activity: str | None
    circle: str | None
    polygon: str | None
    corridor: str | None
    lower: float | None
    upper: float | None
    unit: str
    vertical_ref: str
    start: str | None
    end: str | None
    forces: list[str]
    contact: str | None
    text: str
    lang: str
    classification: str


def build_notice(f: NoticeFields) -> Notice:
    """A notice from the options; any rule it breaks is a usage error naming the option."""
    vertical = None
    if f.lower is not None or f.upper is not None:
        if f.lower is None or f.upper is None:
            raise bad("--lower/--upper", "give both limits of the vertical band")
        vertical = Vertical(lower=f.lower, upper=f.upper, unit=f.unit.upper(), ref=f.vertical_ref.upper())  # type: ignore[arg-type]
    window = None
    if f.start is not None or f.end is not None:
        if f.start is None or f.end is None:
            raise bad("--start/--end", "give both ends of the time window")
        window = Window(start=parse_time(f.start, "--start"), end=parse_time(f.end, "--end"))
    activity = None
    if f.domain is not None or f.activity is not None:
        activity = Activity(domain=(f.domain or "").upper(), type=(f.activity or "OTHER").upper())  # type: ignore[arg-type]
    contact = None
    if f.contact is not None:
        callsign, _, frequency = f.contact.partition("/")
        contact = Contact(callsign=callsign, frequency=frequency or None)
    try:
        return Notice(
            ref=f.ref,
            action=f.action.upper(),  # type: ignore[arg-type]
            refers_to=f.refers_to,
            mode=f.mode.upper(),  # type: ignore[arg-type]
            precedence=f.precedence.upper(),  # type: ignore[arg-type]
            response=f.response.upper(),  # type: ignore[arg-type]
            classification=f.classification,
            text=Text(lang=f.lang, body=f.text),
            activity=activity,
            area=parse_area(f.circle, f.polygon, f.corridor),
            vertical=vertical,
            window=window,
            forces=[_force(x) for x in f.forces],
            contact=contact,
        )
    except InvalidMessage as e:
        raise typer.BadParameter(str(e)) from None


def body_from_file(path: Path) -> Body:
    """A notice (or a free text) written as JSON, as docs/protocol.md describes the body."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise bad("--file", f"{path}: {e.strerror}") from None
    try:
        return decode_body(data)
    except DecodeError as e:
        raise bad("--file", f"{path}: {e}") from None


def free_text(text: str, lang: str) -> FreeText:
    try:
        return FreeText(lang=lang, body=text)
    except InvalidMessage as e:
        raise typer.BadParameter(str(e)) from None

"""Hypothesis strategies for every message part and body of hotline.protocol.messages.

Each strategy builds values that respect the declared limits and the rules that
span fields, so anything drawn from them must build, encode and decode back to
itself. Text is kept short by default (the limits themselves are tested with
explicit examples) so that the properties stay fast.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from hotline.protocol.messages import (
    ACK_LEVELS,
    MAX_FORCES,
    MAX_SHORT,
    MAX_TRANSLATIONS,
    PRECEDENCES,
    Ack,
    Activity,
    Circle,
    Contact,
    Corridor,
    Force,
    FreeText,
    Heartbeat,
    HeartbeatReply,
    Notice,
    Point,
    Polygon,
    Readback,
    Text,
    Translation,
    Vertical,
    Window,
)

# Short text stays short in the properties; the 4000-character limit has its own tests.
TEXT_SIZE = 40

# Hypothesis takes naive bounds; every value drawn is in UTC.
utc_times = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.just(UTC),
)
shorts = st.text(min_size=1, max_size=MAX_SHORT)
long_texts = st.text(min_size=1, max_size=TEXT_SIZE)
comments = st.text(min_size=1, max_size=TEXT_SIZE)
langs = st.from_regex(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}", fullmatch=True)
refs = st.from_regex(r"[A-Z0-9][A-Z0-9-]{2,39}", fullmatch=True)
hashes = st.binary(min_size=32, max_size=32).map(bytes.hex)
probes = st.binary(min_size=16, max_size=16).map(bytes.hex)
checkpoints = st.none() | st.binary(max_size=200)

latitudes = st.floats(min_value=-90.0, max_value=90.0, allow_nan=False)
longitudes = st.floats(min_value=-180.0, max_value=180.0, allow_nan=False)
distances = st.floats(min_value=0.0, max_value=10000.0, exclude_min=True, allow_nan=False)
altitudes = st.floats(min_value=-2000.0, max_value=200000.0, allow_nan=False)
distance_units = st.sampled_from(["NM", "KM"])

points = st.builds(Point, lat=latitudes, lon=longitudes)
circles = st.builds(Circle, center=points, radius=distances, unit=distance_units)
polygons = st.builds(
    Polygon,
    points=st.lists(points, min_size=3, max_size=12, unique_by=lambda p: (p.lat, p.lon)),
)
corridors = st.builds(
    Corridor, path=st.lists(points, min_size=2, max_size=12), half_width=distances, unit=distance_units
)
areas = st.one_of(circles, polygons, corridors)


@st.composite
def verticals(draw: st.DrawFn) -> Vertical:
    a, b = sorted([draw(altitudes), draw(altitudes)])
    return Vertical(
        lower=a,
        upper=b,
        unit=draw(st.sampled_from(["FT", "M", "FL"])),
        ref=draw(st.sampled_from(["AMSL", "AGL", "SFC", "UNL"])),
    )


@st.composite
def windows(draw: st.DrawFn) -> Window:
    start = draw(utc_times)
    length = draw(st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=400)))
    schedule = draw(st.none() | st.text(max_size=200))
    return Window(start=start, end=start + length, schedule=schedule)


activities = st.builds(
    Activity,
    domain=st.sampled_from(["AIR", "GROUND", "NAVAL", "UAV", "FIRES"]),
    type=st.sampled_from(["STRIKE", "PATROL", "TRANSIT", "CONVOY", "ISR", "EXERCISE", "MEDEVAC", "OTHER"]),
)
forces = st.builds(
    Force,
    callsign=shorts,
    unit=st.none() | shorts,
    platform=st.none() | shorts,
    count=st.integers(min_value=1, max_value=100000),
)
contacts = st.builds(Contact, callsign=shorts, frequency=st.none() | st.text(min_size=1, max_size=32))
translations = st.builds(Translation, lang=langs, body=long_texts, translator=shorts)
texts = st.builds(Text, lang=langs, body=long_texts, translations=st.lists(translations, max_size=MAX_TRANSLATIONS))
free_texts = st.builds(
    FreeText, lang=langs, body=long_texts, translations=st.lists(translations, max_size=MAX_TRANSLATIONS)
)


@st.composite
def notices(draw: st.DrawFn, action: str | None = None) -> Notice:
    """A notice of ``action`` (any of NEW, AMEND, CANCEL when None) that passes every rule."""
    action = action or draw(st.sampled_from(["NEW", "AMEND", "CANCEL"]))
    ref = draw(refs)
    refers_to = None if action == "NEW" else draw(refs.filter(lambda r: r != ref))
    optional = action == "CANCEL"
    activity = draw(st.none() | activities) if optional else draw(activities)
    airborne = activity is not None and activity.domain in Notice.AIRBORNE
    vertical = draw(verticals()) if airborne and not optional else draw(st.none() | verticals())
    return Notice(
        ref=ref,
        action=action,  # type: ignore[arg-type]
        mode=draw(st.sampled_from(["OPER", "EXER", "TEST"])),
        precedence=draw(st.sampled_from(PRECEDENCES)),
        response=draw(st.sampled_from(["INFO_ONLY", "CONFIRM_NO_CONFLICT", "REQUEST_CLEAR"])),
        classification=draw(shorts),
        text=draw(texts),
        refers_to=refers_to,
        activity=activity,
        area=draw(st.none() | areas) if optional else draw(areas),
        vertical=vertical,
        window=draw(st.none() | windows()) if optional else draw(windows()),
        forces=draw(st.lists(forces, max_size=MAX_FORCES)),
        contact=draw(st.none() | contacts),
    )


readbacks = st.builds(Readback, area=areas, window=windows())


@st.composite
def acks(draw: st.DrawFn, level: str | None = None) -> Ack:
    """An ack at ``level`` (any when None): a comment when it must, a read-back only when it may."""
    level = level or draw(st.sampled_from(ACK_LEVELS))
    needs_comment = level in ("CONFLICT", "UNABLE")
    return Ack(
        answers=draw(hashes),
        level=level,  # type: ignore[arg-type]
        ref=draw(st.none() | refs),
        readback=draw(st.none() | readbacks) if level == "READ_UNDERSTOOD" else None,
        officer=draw(st.none() | shorts),
        comment=draw(comments) if needs_comment else draw(st.none() | comments),
    )


heartbeats = st.builds(Heartbeat, probe=probes, checkpoint=checkpoints)
heartbeat_replies = st.builds(HeartbeatReply, answers=hashes, probe=probes, checkpoint=checkpoints)

bodies = st.one_of(notices(), acks(), heartbeats, heartbeat_replies, free_texts)

# Every part, by name, for the per-type round trips.
PARTS = {
    "Point": points,
    "Circle": circles,
    "Polygon": polygons,
    "Corridor": corridors,
    "Vertical": verticals(),
    "Window": windows(),
    "Activity": activities,
    "Force": forces,
    "Contact": contacts,
    "Translation": translations,
    "Text": texts,
    "Readback": readbacks,
}

BODIES = {
    "FreeText": free_texts,
    "Notice-NEW": notices("NEW"),
    "Notice-AMEND": notices("AMEND"),
    "Notice-CANCEL": notices("CANCEL"),
    **{f"Ack-{level}": acks(level) for level in ACK_LEVELS},
    "Heartbeat": heartbeats,
    "HeartbeatReply": heartbeat_replies,
}

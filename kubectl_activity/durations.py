"""Go's time.Duration text, as kubectl reads `--request-timeout` and client-go writes `?timeout=`: ParseDuration
and Duration.String, step for step (integer nanoseconds; the float step for fractions is Go's own), so a value
means here what it means to kubectl. Kept to the plugin until the project shares one parser."""

from __future__ import annotations

NANOSECOND = 1
MICROSECOND = 1000 * NANOSECOND
MILLISECOND = 1000 * MICROSECOND
SECOND = 1000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

UNITS = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "\u00b5s": MICROSECOND,  # MICRO SIGN
    "\u03bcs": MICROSECOND,  # GREEK SMALL LETTER MU
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}
_LIMIT = 1 << 63  # |min int64|; the largest positive Duration is one less


class DurationError(ValueError):
    pass


def _leading_int(text: str) -> tuple[int, str]:
    value, i = 0, 0
    while i < len(text) and "0" <= text[i] <= "9":
        if value > _LIMIT // 10:
            raise OverflowError
        value = value * 10 + ord(text[i]) - ord("0")
        if value > _LIMIT:
            raise OverflowError
        i += 1
    return value, text[i:]


def _leading_fraction(text: str) -> tuple[int, float, str]:
    """Digits after the dot; those that would overflow are dropped (Go keeps the precision it can)."""
    value, scale, i, overflow = 0, 1.0, 0, False
    while i < len(text) and "0" <= text[i] <= "9":
        if not overflow:
            if value > (_LIMIT - 1) // 10:
                overflow = True
            else:
                bigger = value * 10 + ord(text[i]) - ord("0")
                if bigger > _LIMIT:
                    overflow = True
                else:
                    value, scale = bigger, scale * 10
        i += 1
    return value, scale, text[i:]


def parse_duration(text: str) -> int:
    """Nanoseconds of a Go duration such as `1m30s`, `500ms`, `1.5h`, `-2m3.4s` or `0`; DurationError if Go would
    refuse it (a bare number other than 0, a unit like `d`, an out-of-range value)."""
    invalid = DurationError(f"invalid duration {text!r}: write a number and a unit (ns, us, ms, s, m, h) like 1m30s")
    rest, negative = text, False
    if rest[:1] in ("-", "+"):
        negative, rest = rest[0] == "-", rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise invalid
    total = 0
    while rest:
        if not (rest[0] == "." or "0" <= rest[0] <= "9"):
            raise invalid
        before = len(rest)
        try:
            whole, rest = _leading_int(rest)
        except OverflowError:
            raise invalid from None
        had_int = len(rest) != before
        fraction, scale, had_fraction = 0, 1.0, False
        if rest[:1] == ".":
            rest = rest[1:]
            before = len(rest)
            fraction, scale, rest = _leading_fraction(rest)
            had_fraction = len(rest) != before
        if not had_int and not had_fraction:
            raise invalid
        end = 0
        while end < len(rest) and not (rest[end] == "." or "0" <= rest[end] <= "9"):
            end += 1
        if end == 0:
            raise DurationError(f"missing unit in duration {text!r}: write e.g. 30s, 1m or 1m30s")
        unit_text, rest = rest[:end], rest[end:]
        unit = UNITS.get(unit_text)
        if unit is None:
            raise DurationError(f"unknown unit {unit_text!r} in duration {text!r}: use ns, us, ms, s, m or h")
        if whole > _LIMIT // unit:
            raise invalid
        whole *= unit
        if fraction > 0:
            whole += int(float(fraction) * (float(unit) / scale))  # float64, as Go: exact to the ns for hours
            if whole > _LIMIT:
                raise invalid
        total += whole
        if total > _LIMIT:
            raise invalid
    if negative:
        return -total
    if total > _LIMIT - 1:
        raise invalid
    return total


def _fraction(value: int, precision: int) -> tuple[str, int]:
    """The `.ddd` of `value` in units of 10**-precision, trailing zeros dropped; and the whole part."""
    digits = ""
    for _ in range(precision):
        digit = value % 10
        if digits or digit:
            digits = str(digit) + digits
        value //= 10
    return ("." + digits if digits else ""), value


def format_duration(nanoseconds: int) -> str:
    """Go's Duration.String: `1h0m0s`, `1m30s`, `1.5s`, `500ms`, `1µs`, `0s`."""
    magnitude = abs(nanoseconds)
    sign = "-" if nanoseconds < 0 else ""
    if magnitude < SECOND:
        if magnitude == 0:
            return "0s"
        for unit, name, precision in ((MILLISECOND, "ms", 6), (MICROSECOND, "\u00b5s", 3), (NANOSECOND, "ns", 0)):
            if magnitude >= unit:
                fraction, whole = _fraction(magnitude, precision)
                return f"{sign}{whole}{fraction}{name}"
    fraction, seconds = _fraction(magnitude, 9)
    text = f"{seconds % 60}{fraction}s"
    minutes = seconds // 60
    if minutes:
        text = f"{minutes % 60}m{text}"
        hours = minutes // 60
        if hours:
            text = f"{hours}h{text}"
    return sign + text


def parse_request_timeout(text: str) -> int:
    """kubectl's --request-timeout in nanoseconds: a Go duration, or a bare integer meaning seconds; 0 means no
    timeout."""
    stripped = text.strip()
    digits = stripped[1:] if stripped[:1] in ("+", "-") else stripped
    is_integer = digits.isascii() and digits.isdigit()  # strconv.Atoi: ASCII digits only
    nanoseconds = int(stripped) * SECOND if is_integer else parse_duration(stripped)
    if nanoseconds < 0:
        raise DurationError(f"invalid timeout {text!r}: it must not be negative (0 means no timeout)")
    return nanoseconds

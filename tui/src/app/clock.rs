//! Time as the dialer handles it: Unix milliseconds, injected into the state
//! (never read from the wall clock while drawing), and the matcher's RFC 3339
//! event times turned into the same unit.

/// Milliseconds since the Unix epoch.
pub type UnixMillis = i64;

/// Parses the RFC 3339 times the matcher writes (`2025-03-01T12:00:00.250Z`,
/// also with an offset or without fraction) into Unix milliseconds.
pub fn parse_rfc3339(text: &str) -> Option<UnixMillis> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let year = number(0..4)?;
    let month = number(5..7)?;
    let day = number(8..10)?;
    let hour = number(11..13)?;
    let minute = number(14..16)?;
    let second = number(17..19)?;
    if bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't' | b' ')
        || bytes[13] != b':'
        || bytes[16] != b':'
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        // Milliseconds: the first three digits, padded with zeros.
        let mut scaled = 0;
        for b in fraction.bytes().take(digits.min(3)) {
            scaled = scaled * 10 + i64::from(b - b'0');
        }
        for _ in digits..3 {
            scaled *= 10;
        }
        millis = scaled;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let hours: i64 = rest[1..3].parse().ok()?;
            let minutes: i64 = rest[4..6].parse().ok()?;
            sign * (hours * 60 + minutes)
        }
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A duration as a call timer shows it: `0:42`, `12:05`, `1:02:03`.
pub fn format_elapsed(ms: i64) -> String {
    let total = ms.max(0) / 1000;
    let (hours, minutes, seconds) = (total / 3600, (total / 60) % 60, total % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{seconds:02}")
    } else {
        format!("{minutes}:{seconds:02}")
    }
}

/// An offset from the call's request as the timeline shows it: `+0.4s`, `+12.0s`, `+2:05`.
pub fn format_offset(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 60_000 {
        format!("+{}.{}s", ms / 1000, (ms % 1000) / 100)
    } else {
        format!("+{}", format_elapsed(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_matchers_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(
            parse_rfc3339("2025-03-01T12:00:00.250Z"),
            Some(1_740_830_400_250)
        );
        assert_eq!(
            parse_rfc3339("2025-03-01T13:00:00+01:00"),
            Some(1_740_830_400_000)
        );
        assert_eq!(
            parse_rfc3339("2025-03-01T12:00:00.123456Z"),
            Some(1_740_830_400_123)
        );
        for bad in [
            "",
            "yesterday",
            "2025-13-01T00:00:00Z",
            "2025-03-01T12:00:00",
            "2025-03-01T12:00:00.Z",
            "2025-03-01T12:00:00+1",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_durations() {
        assert_eq!(format_elapsed(42_900), "0:42");
        assert_eq!(format_elapsed(725_000), "12:05");
        assert_eq!(format_elapsed(3_723_000), "1:02:03");
        assert_eq!(format_elapsed(-5), "0:00");
        assert_eq!(format_offset(450), "+0.4s");
        assert_eq!(format_offset(12_000), "+12.0s");
        assert_eq!(format_offset(125_000), "+2:05");
    }
}

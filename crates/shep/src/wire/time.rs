//! `xsd:dateTime`, read by its lexical form (XML Schema 1.0 part 2, 3.2.7).

use chrono::{FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};

use super::SoapTime;

/// `YYYY-MM-DDThh:mm:ss`, then optional `.` and 1 to 9 digits, then optional
/// `Z` or `±hh:mm` (at most ±14:00). Surrounding XML whitespace is ignored
/// (the type collapses it). A time without an offset is read in `naive_offset`.
pub(super) fn parse(text: &str, naive_offset: FixedOffset) -> Option<SoapTime> {
    let text = text.trim_matches(super::read::is_xml_space);
    if !text.is_ascii() {
        return None;
    }
    let (main, offset) = split_offset(text)?;
    let b = main.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = i32::try_from(digits(&main[0..4])?).ok()?;
    let (month, day) = (digits(&main[5..7])?, digits(&main[8..10])?);
    let (hour, minute, second) = (digits(&main[11..13])?, digits(&main[14..16])?, digits(&main[17..19])?);
    let nanos = match &main[19..] {
        "" => 0,
        rest => {
            let fraction = rest.strip_prefix('.')?;
            if fraction.is_empty() || fraction.len() > 9 {
                return None;
            }
            let exponent = u32::try_from(9 - fraction.len()).ok()?;
            digits(fraction)? * 10u32.pow(exponent)
        }
    };
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    // `from_hms_nano_opt` takes nanoseconds ≥ 10^9 as a leap second: ours are below.
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    let naive = NaiveDateTime::new(date, time);
    let (zone, had_offset) = match offset {
        Some(zone) => (zone, true),
        None => (naive_offset, false),
    };
    let at = zone.from_local_datetime(&naive).single()?;
    Some(SoapTime { at, had_offset })
}

fn digits(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Splits `Z` or `±hh:mm` off the end.
fn split_offset(text: &str) -> Option<(&str, Option<FixedOffset>)> {
    if let Some(main) = text.strip_suffix('Z') {
        return Some((main, Some(FixedOffset::east_opt(0)?)));
    }
    if text.len() < 6 {
        return Some((text, None));
    }
    let (main, tail) = text.split_at(text.len() - 6);
    let t = tail.as_bytes();
    let sign = match t[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return Some((text, None)),
    };
    if t[3] != b':' {
        return None;
    }
    let (hours, minutes) = (digits(&tail[1..3])?, digits(&tail[4..6])?);
    if minutes > 59 || hours > 14 || (hours == 14 && minutes > 0) {
        return None;
    }
    let seconds = i32::try_from(hours * 3600 + minutes * 60).ok()?;
    Some((main, Some(FixedOffset::east_opt(sign * seconds)?)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn astana() -> FixedOffset {
        FixedOffset::east_opt(5 * 3600).unwrap()
    }

    fn rfc3339(text: &str) -> chrono::DateTime<FixedOffset> {
        chrono::DateTime::parse_from_rfc3339(text).unwrap()
    }

    #[test]
    fn times_with_an_offset_keep_it() {
        let time = parse("2024-05-02T10:00:00+06:00", astana()).unwrap();
        assert_eq!(time.at, rfc3339("2024-05-02T10:00:00+06:00"));
        assert_eq!(time.at.offset().local_minus_utc(), 6 * 3600);
        assert!(time.had_offset);
        let time = parse("2024-05-02T10:00:00-03:30", astana()).unwrap();
        assert_eq!(time.at, rfc3339("2024-05-02T13:30:00Z"));
    }

    #[test]
    fn z_is_utc() {
        let time = parse("2024-05-02T10:00:00.123Z", astana()).unwrap();
        assert_eq!(time.at, rfc3339("2024-05-02T10:00:00.123Z"));
        assert_eq!(time.at.offset().local_minus_utc(), 0);
        assert!(time.had_offset);
    }

    #[test]
    fn a_time_without_an_offset_is_read_in_the_given_one() {
        let time = parse("2024-05-02T10:00:00", astana()).unwrap();
        assert_eq!(time.at, rfc3339("2024-05-02T10:00:00+05:00"));
        assert!(!time.had_offset);
        let time = parse(" 2024-05-02T10:00:00.5\n", FixedOffset::east_opt(0).unwrap()).unwrap();
        assert_eq!(time.at, rfc3339("2024-05-02T10:00:00.5Z"));
    }

    #[test]
    fn fractions_up_to_nine_digits() {
        let time = parse("2024-05-02T10:00:00.1234567+05:00", astana()).unwrap();
        assert_eq!(time.at.timestamp_subsec_nanos(), 123_456_700);
        let time = parse("2024-05-02T10:00:00.123456789Z", astana()).unwrap();
        assert_eq!(time.at.timestamp_subsec_nanos(), 123_456_789);
        assert_eq!(parse("2024-05-02T10:00:00.1234567891Z", astana()), None);
    }

    #[test]
    fn what_is_not_an_xsd_date_time_is_refused() {
        for bad in [
            "",
            "yesterday",
            "2024-05-02",
            "2024-05-02 10:00:00",
            "2024-05-02T10:00",
            "2024-13-02T10:00:00",
            "2024-02-30T10:00:00",
            "2024-05-02T24:00:01",
            "2024-05-02T10:60:00",
            "2024-05-02T10:00:60",
            "2024-05-02T10:00:00.",
            "2024-05-02T10:00:00,5",
            "2024-05-02T10:00:00+5:00",
            "2024-05-02T10:00:00+0500",
            "2024-05-02T10:00:00+15:00",
            "2024-05-02T10:00:00+05:60",
            "2024-05-02T10:00:00ZZ",
            "24-05-02T10:00:00",
            "2024-5-02T10:00:00",
            "2024-05-02T10:00:00+05:00 trailing",
            "2024-05-02T1０:00:00",
        ] {
            assert_eq!(parse(bad, astana()), None, "{bad:?} was accepted");
        }
    }
}

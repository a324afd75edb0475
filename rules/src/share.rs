use std::fmt;

/// A share of traffic, stored in parts per million (0 ..= 1,000,000).
///
/// Written in rule files as a percentage with at most four decimals (`12.5`, `"0.0125%"`), so
/// every written value maps to an exact number of parts per million and back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Share(u32);

impl Share {
    pub const ZERO: Share = Share(0);
    pub const ALL: Share = Share(1_000_000);

    pub fn from_ppm(ppm: u32) -> Option<Share> {
        (ppm <= 1_000_000).then_some(Share(ppm))
    }

    pub fn ppm(self) -> u32 {
        self.0
    }

    pub fn as_fraction(self) -> f64 {
        f64::from(self.0) / 1_000_000.0
    }

    /// Parses a percentage written in decimal (`"25"`, `"0.1"`, `"12.3456%"`).
    pub fn parse_percent(text: &str) -> Result<Share, String> {
        let t = text.trim();
        let t = t.strip_suffix('%').unwrap_or(t).trim();
        let (int_part, frac_part) = match t.split_once('.') {
            Some((i, f)) => (i, f),
            None => (t, ""),
        };
        let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int_part.is_empty() || !digits_only(int_part) || !digits_only(frac_part) {
            return Err(format!("`{text}` is not a percentage (expected e.g. 25 or 0.5)"));
        }
        if frac_part.len() > 4 {
            return Err(format!("`{text}` has more than 4 decimals (the finest share is 0.0001 %)"));
        }
        if int_part.len() > 3 {
            return Err(format!("{text} % is out of range 0 to 100"));
        }
        let int: u32 = int_part.parse().map_err(|_| format!("`{text}` is not a number"))?;
        let mut frac: u32 = 0;
        for (i, b) in frac_part.bytes().enumerate() {
            frac += u32::from(b - b'0') * 10u32.pow(3 - i as u32);
        }
        let ppm = int * 10_000 + frac;
        Share::from_ppm(ppm).ok_or_else(|| format!("{text} % is out of range 0 to 100"))
    }
}

/// In JSON as it prints (`"12.5%"`), read back exactly.
impl serde::Serialize for Share {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Share {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Share, D::Error> {
        let text = String::deserialize(d)?;
        Share::parse_percent(&text).map_err(serde::de::Error::custom)
    }
}

/// Prints the share as a percentage with no trailing zeros: `12.5%`.
impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let int = self.0 / 10_000;
        let frac = self.0 % 10_000;
        if frac == 0 {
            write!(f, "{int}%")
        } else {
            let frac = format!("{frac:04}");
            write!(f, "{int}.{}%", frac.trim_end_matches('0'))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_percentages_exactly() {
        assert_eq!(Share::parse_percent("25").unwrap().ppm(), 250_000);
        assert_eq!(Share::parse_percent("0.1").unwrap().ppm(), 1_000);
        assert_eq!(Share::parse_percent("12.3456%").unwrap().ppm(), 123_456);
        assert_eq!(Share::parse_percent("100").unwrap(), Share::ALL);
        assert_eq!(Share::parse_percent("0").unwrap(), Share::ZERO);
        assert_eq!(Share::parse_percent(" 7.5 % ").unwrap().ppm(), 75_000);
    }

    #[test]
    fn rejects_what_is_not_a_share() {
        for bad in ["140", "100.0001", "-1", "1.23456", "abc", "", ".5", "1e3", "1000"] {
            assert!(Share::parse_percent(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn displays_round_trip() {
        for text in ["0%", "12.5%", "0.0001%", "100%", "33.3333%"] {
            assert_eq!(Share::parse_percent(text).unwrap().to_string(), text);
        }
    }
}

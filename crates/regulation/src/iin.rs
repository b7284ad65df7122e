//! The Kazakh IIN (individual identification number).
//!
//! Twelve digits: birth date `YYMMDD`, a century-and-sex digit, a four-digit
//! serial number and a check digit (government decree No. 406 of
//! 22.05.2007). [`Iin`] can only hold a valid number: [`Iin::parse`] checks
//! the length, the digits, the century digit, the birth date and the check
//! digit.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// First pass weights of the check digit.
const WEIGHTS_FIRST: [u32; 11] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
/// Second pass weights, used when the first pass gives 10.
const WEIGHTS_SECOND: [u32; 11] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2];

/// A valid IIN: twelve digits with a real birth date, a century digit 1-6
/// and a correct check digit.
///
/// Serialised as its 12-digit string; deserialising validates.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Iin {
    text: String,
    birth_date: NaiveDate,
    sex: Sex,
}

impl Iin {
    /// Parses and validates a 12-digit IIN. No whitespace or separators are
    /// accepted.
    pub fn parse(text: &str) -> Result<Iin, IinError> {
        let found = text.chars().count();
        if found != 12 {
            return Err(IinError::Length { found });
        }
        let mut digits = [0u8; 12];
        for (slot, byte) in digits.iter_mut().zip(text.bytes()) {
            if !byte.is_ascii_digit() {
                return Err(IinError::NotDigits);
            }
            *slot = byte - b'0';
        }

        let century_digit = digits[6];
        let (century, sex) = match century_digit {
            1 => (1800, Sex::Male),
            2 => (1800, Sex::Female),
            3 => (1900, Sex::Male),
            4 => (1900, Sex::Female),
            5 => (2000, Sex::Male),
            6 => (2000, Sex::Female),
            digit => return Err(IinError::Century { digit }),
        };
        let two_digits = |at: usize| u32::from(digits[at]) * 10 + u32::from(digits[at + 1]);
        let year = century + i32::from(digits[0]) * 10 + i32::from(digits[1]);
        let birth_date = NaiveDate::from_ymd_opt(year, two_digits(2), two_digits(4)).ok_or(IinError::Date)?;

        let mut first_eleven = [0u8; 11];
        first_eleven.copy_from_slice(&digits[..11]);
        let expected = check_digit(&first_eleven).ok_or(IinError::UnusablePrefix)?;
        let found = digits[11];
        if expected != found {
            return Err(IinError::CheckDigit { expected, found });
        }

        Ok(Iin { text: text.to_owned(), birth_date, sex })
    }

    /// The 12 digits.
    /// [`Iin::parse`], and the person must be born by `on` (the day of the check).
    pub fn parse_on(text: &str, on: NaiveDate) -> Result<Iin, IinError> {
        let iin = Iin::parse(text)?;
        if iin.birth_date() > on {
            return Err(IinError::Future { born: iin.birth_date(), on });
        }
        Ok(iin)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The birth date encoded in digits 1-7.
    pub fn birth_date(&self) -> NaiveDate {
        self.birth_date
    }

    /// The sex encoded in digit 7 (odd male, even female).
    pub fn sex(&self) -> Sex {
        self.sex
    }
}

/// The check digit for the first eleven digits of an IIN.
///
/// `s = (Σ d[i]·W1[i]) mod 11` with `W1 = 1..=11`; if that is 10, the second
/// pass uses `W2 = 3,4,5,6,7,8,9,10,11,1,2`. Returns `None` when the second
/// pass gives 10 too (no valid IIN has this prefix), or when an element is
/// not a digit 0-9.
pub fn check_digit(first_eleven: &[u8; 11]) -> Option<u8> {
    if first_eleven.iter().any(|&digit| digit > 9) {
        return None;
    }
    let weighted_sum = |weights: &[u32; 11]| -> u32 {
        first_eleven.iter().zip(weights).map(|(&digit, &weight)| u32::from(digit) * weight).sum::<u32>() % 11
    };
    let first_pass = weighted_sum(&WEIGHTS_FIRST);
    let result = if first_pass == 10 { weighted_sum(&WEIGHTS_SECOND) } else { first_pass };
    // result < 11; 10 means unusable, anything else is a digit.
    u8::try_from(result).ok().filter(|&digit| digit < 10)
}

impl FromStr for Iin {
    type Err = IinError;

    fn from_str(text: &str) -> Result<Iin, IinError> {
        Iin::parse(text)
    }
}

impl fmt::Display for Iin {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

impl TryFrom<String> for Iin {
    type Error = IinError;

    fn try_from(text: String) -> Result<Iin, IinError> {
        Iin::parse(&text)
    }
}

impl From<Iin> for String {
    fn from(iin: Iin) -> String {
        iin.text
    }
}

/// The sex encoded in an IIN's seventh digit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    Male,
    Female,
}

impl Sex {
    /// `"male"` or `"female"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Male => "male",
            Sex::Female => "female",
        }
    }
}

impl fmt::Display for Sex {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Why a text is not a valid IIN. [`IinError::code`] is stable and
/// machine-readable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IinError {
    #[error("iin must have 12 digits, found {found}")]
    Length { found: usize },
    #[error("iin must contain only the digits 0-9")]
    NotDigits,
    #[error("iin digit 7 (century and sex) must be 1 to 6, found {digit}")]
    Century { digit: u8 },
    #[error("iin digits 1-6 are not a real birth date")]
    Date,
    #[error("iin check digit must be {expected}, found {found}")]
    CheckDigit { expected: u8, found: u8 },
    #[error("iin first 11 digits admit no check digit")]
    UnusablePrefix,
    #[error("iin says born {born}, after {on}")]
    Future { born: NaiveDate, on: NaiveDate },
}

impl IinError {
    /// A stable machine-readable code, e.g. `"iin.check_digit"`.
    pub fn code(&self) -> &'static str {
        match self {
            IinError::Length { .. } => "iin.length",
            IinError::NotDigits => "iin.not_digits",
            IinError::Century { .. } => "iin.century",
            IinError::Date => "iin.date",
            IinError::CheckDigit { .. } => "iin.check_digit",
            IinError::UnusablePrefix => "iin.unusable_prefix",
            IinError::Future { .. } => "iin.future",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;

    #[test]
    fn an_iin_dated_after_the_day_of_the_check_is_invalid() {
        let on = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let error = Iin::parse_on("300101500123", on).unwrap_err();
        assert_eq!(error.code(), "iin.future", "{error}");
        assert!(Iin::parse("300101500123").is_ok(), "the digits themselves are valid");
        assert!(Iin::parse_on("850715300122", on).is_ok());
    }
    use proptest::prelude::*;

    /// The one place that exercises `Iin::parse`: `expected` is either
    /// `"<sex> <birth date>"` or `"error <code>: <message>"`.
    fn check(input: &str, expected: &str) {
        let actual = match Iin::parse(input) {
            Ok(iin) => {
                assert_eq!(iin.as_str(), input);
                assert_eq!(iin.to_string(), input);
                assert_eq!(input.parse::<Iin>().as_ref(), Ok(&iin));
                format!("{} {}", iin.sex().as_str(), iin.birth_date())
            }
            Err(error) => format!("error {}: {}", error.code(), error),
        };
        assert_eq!(actual, expected, "input {input:?}");
    }

    #[test]
    fn worked_examples_from_domain_facts() {
        check("850715300122", "male 1985-07-15");
        check("900101400122", "female 1990-01-01");
        check("050212500123", "male 2005-02-12");
        // 8·1+8·2+0+1·4+0+1·6+3·7+0+0+1·10+1·11 = 76, 76 mod 11 = 10, so
        // the W2 pass: 8·3+8·4+0+1·6+0+1·8+3·9+0+0+1·1+1·2 = 100, mod 11 = 1.
        check("880101300111", "male 1988-01-01");
    }

    #[test]
    fn unusable_prefix() {
        // W1: 8+16+0+4+0+6+21+0+0+10+0 = 65, mod 11 = 10;
        // W2: 24+32+0+6+0+8+27+0+0+1+0 = 98, mod 11 = 10.
        assert_eq!(check_digit(&[8, 8, 0, 1, 0, 1, 3, 0, 0, 1, 0]), None);
        for last in 0..=9 {
            check(&format!("88010130010{last}"), "error iin.unusable_prefix: iin first 11 digits admit no check digit");
        }
    }

    #[test]
    fn check_digit_examples() {
        assert_eq!(check_digit(&[8, 5, 0, 7, 1, 5, 3, 0, 0, 1, 2]), Some(2));
        assert_eq!(check_digit(&[8, 8, 0, 1, 0, 1, 3, 0, 0, 1, 1]), Some(1));
        assert_eq!(check_digit(&[8, 5, 0, 7, 1, 5, 3, 0, 0, 1, 10]), None);
    }

    #[test]
    fn centuries_and_sexes() {
        // Century digits 1-6 on the same date and serial; check digits by hand
        // (W1 sum without digit 7 is 0+0+0+4+0+6+0+0+0+0+11 = 21, digit 7
        // weighs 7: 21+7c mod 11).
        check("000101100011", "error iin.check_digit: iin check digit must be 6, found 1");
        check("000101100016", "male 1800-01-01");
        check("000101200012", "female 1800-01-01");
        check("000101300019", "male 1900-01-01");
        check("000101400015", "female 1900-01-01");
        check("000101500011", "male 2000-01-01");
        check("000101600018", "female 2000-01-01");
    }

    #[test]
    fn rejections() {
        check("85071530012", "error iin.length: iin must have 12 digits, found 11");
        check("8507153001222", "error iin.length: iin must have 12 digits, found 13");
        check("", "error iin.length: iin must have 12 digits, found 0");
        check(" 85071530012", "error iin.not_digits: iin must contain only the digits 0-9");
        check("85071530012a", "error iin.not_digits: iin must contain only the digits 0-9");
        check("８５0715300122", "error iin.not_digits: iin must contain only the digits 0-9");
        check("٨٥0715300122", "error iin.not_digits: iin must contain only the digits 0-9");
        check("-85071530012", "error iin.not_digits: iin must contain only the digits 0-9");
        check("850715000122", "error iin.century: iin digit 7 (century and sex) must be 1 to 6, found 0");
        check("850715700122", "error iin.century: iin digit 7 (century and sex) must be 1 to 6, found 7");
        check("850715900122", "error iin.century: iin digit 7 (century and sex) must be 1 to 6, found 9");
        check("851315300122", "error iin.date: iin digits 1-6 are not a real birth date");
        check("850732300122", "error iin.date: iin digits 1-6 are not a real birth date");
        check("850229300122", "error iin.date: iin digits 1-6 are not a real birth date");
        check("850715300123", "error iin.check_digit: iin check digit must be 2, found 3");
    }

    #[test]
    fn leap_day_depends_on_century() {
        // 2000-02-29 exists, 1900-02-29 does not. W1 sum of 000229?0001 without
        // digit 7: 2·4+2·5+9·6+1·11 = 83; 83+7·5 = 118, mod 11 = 8;
        // 83+7·3 = 104, mod 11 = 5.
        check("000229500018", "male 2000-02-29");
        check("000229300015", "error iin.date: iin digits 1-6 are not a real birth date");
    }

    #[test]
    fn serde_is_a_validated_string() {
        let iin = Iin::parse("900101400122").unwrap();
        let encoded = toml::to_string(&Wrapper { iin: iin.clone() }).unwrap();
        assert_eq!(encoded, "iin = \"900101400122\"\n");
        let decoded: Wrapper = toml::from_str(&encoded).unwrap();
        assert_eq!(decoded.iin, iin);
        let invalid = toml::from_str::<Wrapper>("iin = \"900101400123\"\n").unwrap_err();
        assert!(invalid.to_string().contains("iin check digit must be 2, found 3"), "{invalid}");
    }

    #[derive(Debug, Serialize, Deserialize)]
    struct Wrapper {
        iin: Iin,
    }

    fn digits_of(prefix: &str) -> [u8; 11] {
        let mut digits = [0u8; 11];
        for (slot, byte) in digits.iter_mut().zip(prefix.bytes()) {
            *slot = byte - b'0';
        }
        digits
    }

    proptest! {
        #[test]
        fn generated_iins_round_trip(
            days in 0i64..(300 * 366),
            female in any::<bool>(),
            serial in 0u32..10_000,
        ) {
            let birth_date = NaiveDate::from_ymd_opt(1800, 1, 1).unwrap()
                + chrono::Days::new(u64::try_from(days).unwrap());
            prop_assume!(birth_date.year() < 2100);
            let century_digit = (birth_date.year() - 1800) / 100 * 2 + 1 + i32::from(female);
            let prefix = format!(
                "{:02}{:02}{:02}{}{:04}",
                birth_date.year() % 100,
                birth_date.month(),
                birth_date.day(),
                century_digit,
                serial,
            );
            match check_digit(&digits_of(&prefix)) {
                Some(digit) => {
                    let text = format!("{prefix}{digit}");
                    let iin = Iin::parse(&text).unwrap();
                    prop_assert_eq!(iin.birth_date(), birth_date);
                    prop_assert_eq!(iin.sex(), if female { Sex::Female } else { Sex::Male });
                    prop_assert_eq!(iin.as_str(), text.as_str());
                    for other in (0..=9u8).filter(|&other| other != digit) {
                        prop_assert_eq!(
                            Iin::parse(&format!("{prefix}{other}")),
                            Err(IinError::CheckDigit { expected: digit, found: other })
                        );
                    }
                }
                None => {
                    for last in 0..=9u8 {
                        prop_assert_eq!(
                            Iin::parse(&format!("{prefix}{last}")),
                            Err(IinError::UnusablePrefix)
                        );
                    }
                }
            }
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,14}") {
            let _ = Iin::parse(&text);
        }
    }
}

//! One field of a ledger row, checked. The importer (`ledger`) and the
//! registry writes of the API use the same checks, so a value the API
//! accepts imports back, and one the importer refuses the API refuses with
//! the same words.

use anju_core::{gb11643_valid, PersonRole};
use chrono::NaiveDate;

/// A date as the ledger writes it (`YYYY-MM-DD`).
pub fn date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("{s:?} is not a valid date (YYYY-MM-DD)"))
}

/// A unit's area in m² (empty: unknown).
pub fn area(s: &str) -> Result<Option<f64>, String> {
    match s {
        "" => Ok(None),
        s => match s.parse::<f64>() {
            Ok(a) if a > 0.0 && a < 10_000.0 => Ok(Some(a)),
            _ => Err(format!("{s:?} is not an area in m²")),
        },
    }
}

/// `tenant`, `member` or `cohabitant`.
pub fn role(s: &str) -> Result<PersonRole, String> {
    PersonRole::parse(s).ok_or_else(|| format!("unknown role {s:?} (tenant, member or cohabitant)"))
}

/// A GB 11643 ID number, upper-cased (the check digit may be `x`).
pub fn id_number(s: &str) -> Result<String, String> {
    let id = s.to_ascii_uppercase();
    gb11643_valid(&id).map_err(|why| format!("invalid ID number: {why}"))?;
    Ok(id)
}

/// Digits, `-` and `+` (empty: none).
pub fn phone(s: &str) -> Result<String, String> {
    if s.chars()
        .all(|c| c.is_ascii_digit() || c == '-' || c == '+')
        && s.chars().count() <= 32
    {
        Ok(s.to_owned())
    } else {
        Err(format!("{s:?} is not a phone number"))
    }
}

/// A birth year from 1900 to `this_year`.
pub fn birth_year(y: i32, this_year: i32) -> Result<i32, String> {
    if (1900..=this_year).contains(&y) {
        Ok(y)
    } else {
        Err(format!("{y} is not a birth year (1900 to {this_year})"))
    }
}

/// A required free-text value (unit, household, person id, name): not
/// empty, at most `max` characters, no control characters.
pub fn text(s: &str, max: usize) -> Result<&str, String> {
    if s.trim().is_empty() {
        Err("must not be empty".into())
    } else if s.chars().count() > max {
        Err(format!("must have at most {max} characters"))
    } else if s.chars().any(char::is_control) {
        Err("must not contain control characters".into())
    } else {
        Ok(s)
    }
}

/// A site code (estate, building, entrance, device, grid): 1 to 64
/// letters, digits, `-` and `_` — codes become MQTT topic levels, metric
/// labels and parts of file paths.
pub fn code(s: &str) -> Result<&str, String> {
    if crate::file::valid_code(s) {
        Ok(s)
    } else {
        Err(format!(
            "{s:?} is not a valid code (1 to 64 letters, digits, - and _)"
        ))
    }
}

/// A camera URL: `rtsp://` or `rtsps://`, with a host and no credentials
/// (those go in a secret).
pub fn rtsp_url(url: &str) -> Result<(), String> {
    let rest = match url
        .strip_prefix("rtsp://")
        .or_else(|| url.strip_prefix("rtsps://"))
    {
        Some(r) => r,
        None => return Err(format!("{url:?} is not an rtsp:// URL")),
    };
    let authority = rest.split('/').next().unwrap_or("");
    if authority.contains('@') {
        return Err(
            "camera URL must not contain credentials; put them in a secret (secret = \"name\")"
                .into(),
        );
    }
    if authority.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    if url.len() > 1024 || url.chars().any(char::is_control) {
        return Err("camera URL too long or with control characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_as_the_ledger_has_them() {
        assert_eq!(date("2024-02-29").unwrap().to_string(), "2024-02-29");
        assert!(date("2023-02-29").is_err());
        assert_eq!(area("").unwrap(), None);
        assert!(area("-3").is_err());
        assert!(role("landlord").unwrap_err().contains("tenant, member"));
        assert_eq!(
            id_number("11010519491231002x").unwrap(),
            "11010519491231002X"
        );
        assert!(id_number("110105194912310021").is_err());
        assert!(phone("138 0000").is_err());
        assert_eq!(phone("+86-138").unwrap(), "+86-138");
        assert!(birth_year(1899, 2026).is_err());
        assert!(birth_year(2027, 2026).is_err());
        assert!(text(" ", 10).is_err());
        assert!(text("a\u{7}", 10).is_err());
        assert!(text("王伟", 2).is_ok());
    }
}

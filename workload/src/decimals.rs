//! Rounding of measured values for the JSON records: short, exactly parseable numbers.

/// `x` rounded to `places` decimals, with −0 as 0.
pub(crate) fn round(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale + 0.0
}

/// `x` rounded to 6 decimals (µs for seconds).
pub(crate) fn micro(x: f64) -> f64 {
    round(x, 6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_and_drops_negative_zero() {
        assert_eq!(micro(4.996882664999999), 4.996883);
        assert_eq!(round(0.34333333333333327, 3), 0.343);
        assert!(micro(-0.0).is_sign_positive());
    }
}

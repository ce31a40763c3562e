//! A stage timeout: how long a stage may run before it is killed and fails. It comes from
//! `--timeout`, `register(timeout=)` or `core.stage_timeout`, in that order of precedence
//! ([`effective`]), and is not part of the stage key: changing it re-runs nothing.

use std::fmt;
use std::time::Duration;

/// A positive, finite number of seconds that a [`Duration`] can hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct StageTimeout {
    secs: f64,
    duration: Duration,
}

impl StageTimeout {
    /// The timeout of `secs` seconds, or why there is none: zero, negative, NaN, infinite and
    /// more seconds than a `Duration` holds are refused.
    pub(crate) fn from_secs(secs: f64) -> Result<StageTimeout, String> {
        let refused = || format!("a timeout must be a number of seconds > 0, not {secs}");
        if secs.is_nan() || secs <= 0.0 {
            return Err(refused());
        }
        let duration = Duration::try_from_secs_f64(secs).map_err(|_| refused())?;
        Ok(StageTimeout { secs, duration })
    }

    pub(crate) fn duration(self) -> Duration {
        self.duration
    }
}

/// The seconds as given: `1`, `0.5`.
impl fmt::Display for StageTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.secs)
    }
}

/// `--timeout` wins over the stage's `register(timeout=)`, which wins over `core.stage_timeout`.
pub(crate) fn effective(
    cli: Option<StageTimeout>,
    registered: Option<StageTimeout>,
    config: Option<StageTimeout>,
) -> Option<StageTimeout> {
    cli.or(registered).or(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_shown_as_given() {
        let shown = |s: f64| StageTimeout::from_secs(s).unwrap().to_string();
        assert_eq!(shown(1.0), "1");
        assert_eq!(shown(0.5), "0.5");
        assert_eq!(shown(90.25), "90.25");
        assert_eq!(
            StageTimeout::from_secs(0.5).unwrap().duration(),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn only_positive_finite_seconds_are_a_timeout() {
        for secs in [0.0, -0.0, -1.0, f64::NAN, f64::INFINITY, 1e300] {
            let e = StageTimeout::from_secs(secs).expect_err(&secs.to_string());
            assert!(
                e.starts_with("a timeout must be a number of seconds > 0"),
                "{e}"
            );
        }
    }

    #[test]
    fn the_command_line_wins_then_the_registration_then_the_config() {
        let t = |s: f64| Some(StageTimeout::from_secs(s).unwrap());
        assert_eq!(effective(t(1.0), t(2.0), t(3.0)), t(1.0));
        assert_eq!(effective(None, t(2.0), t(3.0)), t(2.0));
        assert_eq!(effective(None, None, t(3.0)), t(3.0));
        assert_eq!(effective(None, None, None), None);
    }
}

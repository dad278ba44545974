//! A business's calendar: its IANA time zone and the day its week starts on. Instants stay UTC
//! milliseconds everywhere; the calendar turns them into the business's local days, which is
//! what "days overdue", ages, days since the last interaction, the gaps between interaction
//! days and "this week" count in, and gives the local midnights at which those counts change.
//!
//! A local day is numbered like a UTC one: days since 1970-01-01 of the local calendar, so
//! `local_day(t) = floor(local wall-clock ms / DAY_MS)`. A midnight that a daylight-saving change
//! skips begins its day at the first local instant that exists.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveTime, Offset, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::clock::{Ms, DAY_MS};

/// An IANA time zone name, checked against the time zone database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Zone(Tz);

impl Default for Zone {
    fn default() -> Self {
        Self(Tz::UTC)
    }
}

impl FromStr for Zone {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        s.parse::<Tz>().map(Zone).map_err(|_| {
            format!("{s:?} is not an IANA time zone name (e.g. \"Europe/Berlin\", \"UTC\")")
        })
    }
}

impl TryFrom<String> for Zone {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Zone> for String {
    fn from(z: Zone) -> String {
        z.0.name().to_owned()
    }
}

impl Zone {
    /// The zone's number in this build's time zone database: how SQL, whose parameters are
    /// integers, names it (see [`Zone::from_id`]).
    pub fn id(self) -> i64 {
        chrono_tz::TZ_VARIANTS
            .iter()
            .position(|t| *t == self.0)
            .unwrap_or(0) as i64
    }

    /// The zone numbered `id` by [`Zone::id`], if there is one.
    pub fn from_id(id: i64) -> Option<Self> {
        usize::try_from(id)
            .ok()
            .and_then(|i| chrono_tz::TZ_VARIANTS.get(i))
            .map(|t| Zone(*t))
    }

    /// The calendar of this zone with weeks starting on Monday (enough for day arithmetic).
    pub fn days(self) -> Calendar {
        Calendar {
            timezone: self,
            week_starts_on: WeekStart::Monday,
        }
    }

    /// `at` as local date, time and zone abbreviation: `2026-12-03 10:00 CET`.
    pub fn format_minute(self, at: Ms) -> String {
        let utc = DateTime::from_timestamp_millis(at).unwrap_or_default();
        utc.with_timezone(&self.0)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string()
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

/// The first day of a calendar week: an English day name, any case, or its first three
/// letters (`"sunday"`, `"Sun"`); written as the lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum WeekStart {
    #[default]
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl TryFrom<String> for WeekStart {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        use WeekStart::*;
        let name = s.trim().to_ascii_lowercase();
        [
            Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday,
        ]
        .into_iter()
        .find(|d| d.name() == name || (name.len() == 3 && d.name().starts_with(&name)))
        .ok_or_else(|| format!("{s:?} is not a day of the week (e.g. \"monday\", \"sun\")"))
    }
}

impl WeekStart {
    /// The day's lower-case English name, as configured and serialised.
    pub fn name(self) -> &'static str {
        match self {
            Self::Monday => "monday",
            Self::Tuesday => "tuesday",
            Self::Wednesday => "wednesday",
            Self::Thursday => "thursday",
            Self::Friday => "friday",
            Self::Saturday => "saturday",
            Self::Sunday => "sunday",
        }
    }

    fn weekday(self) -> chrono::Weekday {
        use chrono::Weekday::*;
        match self {
            Self::Monday => Mon,
            Self::Tuesday => Tue,
            Self::Wednesday => Wed,
            Self::Thursday => Thu,
            Self::Friday => Fri,
            Self::Saturday => Sat,
            Self::Sunday => Sun,
        }
    }
}

/// The calendar a business counts days and weeks in: `[calendar]` for every business,
/// `[business.<id>] timezone` / `week_starts_on` for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Calendar {
    /// IANA time zone name; default `UTC`.
    #[serde(alias = "time_zone")]
    pub timezone: Zone,
    /// The day "this week" starts on; default `monday` (ISO 8601).
    #[serde(alias = "week_start", alias = "first_day_of_week")]
    pub week_starts_on: WeekStart,
}

impl Calendar {
    /// The UTC offset in force at instant `at`, in ms (positive east of Greenwich).
    pub fn offset_ms(&self, at: Ms) -> Ms {
        let utc = DateTime::from_timestamp_millis(at).unwrap_or_default();
        let offset = self.timezone.0.offset_from_utc_datetime(&utc.naive_utc());
        i64::from(offset.fix().local_minus_utc()) * 1000
    }

    /// The local wall-clock time of `at`, as ms since the local calendar's 1970-01-01 00:00.
    pub fn local_ms(&self, at: Ms) -> Ms {
        at + self.offset_ms(at)
    }

    /// The local day `at` falls on (days since 1970-01-01 of the local calendar).
    pub fn local_day(&self, at: Ms) -> i64 {
        self.local_ms(at).div_euclid(DAY_MS)
    }

    /// The instant local day `day` begins: its midnight, or the first local instant after a
    /// midnight that a daylight-saving change skips.
    pub fn day_start(&self, day: i64) -> Ms {
        let date = NaiveDate::from_ymd_opt(1970, 1, 1)
            .and_then(|d| d.checked_add_days(Days::new(day.max(0) as u64)))
            .unwrap_or_default();
        let mut local = date.and_time(NaiveTime::MIN);
        // Transitions fall on whole quarter hours: step to the first wall time that exists.
        for _ in 0..96 {
            match self.timezone.0.from_local_datetime(&local) {
                LocalResult::Single(t) => return t.timestamp_millis(),
                LocalResult::Ambiguous(first, _) => return first.timestamp_millis(),
                LocalResult::None => local += chrono::Duration::minutes(15),
            }
        }
        day * DAY_MS - self.offset_ms(day * DAY_MS)
    }

    /// The first local midnight after `now`.
    pub fn next_midnight(&self, now: Ms) -> Ms {
        self.day_start(self.local_day(now) + 1)
    }

    /// The local day the week containing `now` starts on.
    pub fn week_start_day(&self, now: Ms) -> i64 {
        let today = self.local_day(now);
        let weekday = NaiveDate::from_ymd_opt(1970, 1, 1)
            .and_then(|d| d.checked_add_days(Days::new(today.max(0) as u64)))
            .unwrap_or_default()
            .weekday();
        let back = (7 + weekday.num_days_from_monday()
            - self.week_starts_on.weekday().num_days_from_monday())
            % 7;
        today - i64::from(back)
    }

    /// The instant the week containing `now` began, and the instant the next one begins.
    pub fn week(&self, now: Ms) -> (Ms, Ms) {
        let start = self.week_start_day(now);
        (self.day_start(start), self.day_start(start + 7))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> Ms {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    fn cal(tz: &str, start: WeekStart) -> Calendar {
        Calendar {
            timezone: tz.parse().unwrap(),
            week_starts_on: start,
        }
    }

    #[test]
    fn local_days_follow_the_zone_and_its_daylight_saving() {
        let berlin = cal("Europe/Berlin", WeekStart::Monday);
        let utc = Calendar::default();
        // 23:30 UTC on 2026-12-01 is already 2 December in Berlin (UTC+1).
        let t = ms("2026-12-01T23:30:00Z");
        assert_eq!(utc.local_day(t) + 1, berlin.local_day(t));
        assert_eq!(
            berlin.day_start(berlin.local_day(t)),
            ms("2026-12-01T23:00:00Z")
        );
        // Summer time: midnight is 22:00 UTC.
        let summer = ms("2026-07-01T12:00:00Z");
        assert_eq!(berlin.next_midnight(summer), ms("2026-07-01T22:00:00Z"));
        // The night clocks go back (25 October 2026) is a 25-hour day.
        let d = berlin.local_day(ms("2026-10-25T12:00:00Z"));
        assert_eq!(
            berlin.day_start(d + 1) - berlin.day_start(d),
            25 * 3_600_000
        );
    }

    #[test]
    fn a_skipped_midnight_starts_the_day_at_the_first_instant_that_exists() {
        // Chile (America/Santiago) moved clocks forward at 00:00 on 2026-09-06: 00:00-00:59
        // never happened, the day starts at 01:00 local (-03).
        let santiago = cal("America/Santiago", WeekStart::Monday);
        let day = santiago.local_day(ms("2026-09-06T12:00:00Z"));
        let start = santiago.day_start(day);
        assert_eq!(santiago.local_day(start), day);
        assert_eq!(santiago.local_day(start - 1), day - 1);
    }

    #[test]
    fn weeks_start_on_the_configured_day_at_local_midnight() {
        // Thursday 2026-12-03 15:00 UTC.
        let now = ms("2026-12-03T15:00:00Z");
        let monday = cal("Europe/Berlin", WeekStart::Monday);
        assert_eq!(
            monday.week(now),
            (ms("2026-11-29T23:00:00Z"), ms("2026-12-06T23:00:00Z"))
        );
        let sunday = cal("America/New_York", WeekStart::Sunday);
        assert_eq!(sunday.week(now).0, ms("2026-11-29T05:00:00Z"));
        // On its first day, a week starts that same midnight.
        let auckland = cal("Pacific/Auckland", WeekStart::Friday);
        assert_eq!(auckland.week(now).0, ms("2026-12-03T11:00:00Z"));
    }

    #[test]
    fn zones_are_numbered_both_ways() {
        let z: Zone = "Europe/Berlin".parse().unwrap();
        assert_eq!(Zone::from_id(z.id()), Some(z));
        assert_eq!(Zone::from_id(-1), None);
        assert_eq!(
            z.format_minute(ms("2026-12-03T09:00:00Z")),
            "2026-12-03 10:00 CET"
        );
        assert_eq!(
            Zone::default().format_minute(ms("2026-12-03T09:00:00Z")),
            "2026-12-03 09:00 UTC"
        );
    }

    #[test]
    fn names_are_checked_and_kept() {
        let c: Calendar =
            serde_json::from_str(r#"{"timezone": "Europe/Berlin", "week_starts_on": "sunday"}"#)
                .unwrap();
        assert_eq!(c.timezone.to_string(), "Europe/Berlin");
        assert_eq!(c.week_starts_on, WeekStart::Sunday);
        let e = serde_json::from_str::<Calendar>(r#"{"timezone": "Mars/Olympus"}"#).unwrap_err();
        assert!(e.to_string().contains("not an IANA time zone"), "{e}");
        for (text, day) in [("Sunday", WeekStart::Sunday), ("SAT", WeekStart::Saturday)] {
            let c: Calendar =
                serde_json::from_value(serde_json::json!({ "week_starts_on": text })).unwrap();
            assert_eq!(c.week_starts_on, day);
        }
        let e = serde_json::from_str::<Calendar>(r#"{"week_starts_on": "someday"}"#).unwrap_err();
        assert!(e.to_string().contains("not a day of the week"), "{e}");
    }
}

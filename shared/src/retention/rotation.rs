//! Backup rotation: grandfather-father-son.
//!
//! Of the successful backups, keep the newest `keep_last`, and the newest of
//! each of the last `daily` days, `weekly` ISO weeks, `monthly` months and
//! `yearly` years *that have a backup* (a missed day or week never shortens
//! the history kept, as in restic's `forget --keep-*`). Always keep the newest
//! backup a restore drill proved, whatever its age. Failed backups are kept a
//! while for investigation, then go. All calendar arithmetic is in UTC.
//!
//! Pure: the rule is tested over generated dates (`tests` below) and the
//! retention run only carries out what [`decide`] says.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::Serialize;
use uuid::Uuid;

/// How many backups of each period to keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rotation {
    /// The newest successful backups, whatever their dates.
    pub keep_last: usize,
    pub daily: usize,
    pub weekly: usize,
    pub monthly: usize,
    pub yearly: usize,
    /// A failed backup's partial object is kept this long for investigation.
    pub failed_age: Duration,
}

impl Default for Rotation {
    fn default() -> Self {
        Self {
            keep_last: 7,
            daily: 7,
            weekly: 4,
            monthly: 12,
            yearly: 0,
            failed_age: Duration::days(7),
        }
    }
}

/// What the rotation needs to know of one backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupFacts {
    pub id: Uuid,
    pub started_at: DateTime<Utc>,
    pub succeeded: bool,
    /// A restore drill restored this backup and checked it.
    pub drill_succeeded: bool,
}

/// Why a backup is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    Last,
    Daily,
    Weekly,
    Monthly,
    Yearly,
    /// The newest backup whose restore drill succeeded.
    LastRestorable,
    /// A failed backup, kept for investigation.
    RecentFailure,
}

/// One backup's fate: kept for these reasons, or expired when there are none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub id: Uuid,
    pub keep: Vec<Keep>,
}

impl Decision {
    pub fn expires(&self) -> bool {
        self.keep.is_empty()
    }
}

/// The calendar period a day falls in (day, ISO week, month, year), as a comparable key.
type Period = fn(NaiveDate) -> (i32, u32);

/// The rotation's verdict on every backup, newest first.
pub fn decide(backups: &[BackupFacts], now: DateTime<Utc>, rotation: &Rotation) -> Vec<Decision> {
    let mut newest_first: Vec<&BackupFacts> = backups.iter().collect();
    newest_first.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
    let good: Vec<&BackupFacts> = newest_first.iter().copied().filter(|b| b.succeeded).collect();

    let mut reasons: std::collections::HashMap<Uuid, Vec<Keep>> = std::collections::HashMap::new();
    let mut keep = |id: Uuid, why: Keep| reasons.entry(id).or_default().push(why);
    for b in good.iter().take(rotation.keep_last) {
        keep(b.id, Keep::Last);
    }
    let periods: [(usize, Keep, Period); 4] = [
        (rotation.daily, Keep::Daily, |d| (d.year(), d.ordinal())),
        (rotation.weekly, Keep::Weekly, |d| (d.iso_week().year(), d.iso_week().week())),
        (rotation.monthly, Keep::Monthly, |d| (d.year(), d.month())),
        (rotation.yearly, Keep::Yearly, |d| (d.year(), 0)),
    ];
    for (count, why, period) in periods {
        let mut seen = HashSet::new();
        for b in &good {
            if seen.len() == count {
                break;
            }
            // Newest first: the first backup met in a period is that period's newest.
            if seen.insert(period(b.started_at.date_naive())) {
                keep(b.id, why);
            }
        }
    }
    if let Some(b) = good.iter().find(|b| b.drill_succeeded) {
        keep(b.id, Keep::LastRestorable);
    }
    for b in
        newest_first.iter().filter(|b| !b.succeeded && now - b.started_at < rotation.failed_age)
    {
        keep(b.id, Keep::RecentFailure);
    }
    newest_first
        .iter()
        .map(|b| Decision { id: b.id, keep: reasons.remove(&b.id).unwrap_or_default() })
        .collect()
}

/// The backups [`decide`] expires.
pub fn to_expire(backups: &[BackupFacts], now: DateTime<Utc>, rotation: &Rotation) -> Vec<Uuid> {
    decide(backups, now, rotation).into_iter().filter(Decision::expires).map(|d| d.id).collect()
}

/// The longest a backup run lasts (the function's timeout): its objects are
/// locked at most this long after it started.
pub const LONGEST_RUN: Duration = Duration::minutes(15);

/// When the S3 Object Lock of a backup started at `started_at` has surely
/// lapsed, given the lock the backup function applies.
pub fn lock_lapses(started_at: DateTime<Utc>, lock: Duration) -> DateTime<Utc> {
    started_at + lock + LONGEST_RUN
}

/// The first daily run at which the rotation expires backup `id`, assuming a
/// good, drilled backup keeps arriving every day at the newest one's time of
/// day. `None` when the rotation would keep it beyond any horizon it has
/// (the newest restorable backup, say, while no newer one is drilled).
pub fn removal_date(
    backups: &[BackupFacts],
    id: Uuid,
    now: DateTime<Utc>,
    rotation: &Rotation,
) -> Option<DateTime<Utc>> {
    let mut world: Vec<BackupFacts> = backups.to_vec();
    let newest = world.iter().map(|b| b.started_at).max().unwrap_or(now);
    let step = |day: i64| newest.max(now - Duration::days(1)) + Duration::days(day);
    let horizon = rotation.keep_last
        + rotation.daily
        + 7 * rotation.weekly
        + 31 * rotation.monthly
        + 366 * rotation.yearly
        + 2;
    for day in 0..=horizon as i64 {
        let at = if day == 0 { now } else { step(day) };
        if day > 0 {
            world.push(BackupFacts {
                id: Uuid::new_v4(),
                started_at: at,
                succeeded: true,
                drill_succeeded: true,
            });
        }
        if to_expire(&world, at, rotation).contains(&id) {
            return Some(at);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_lock_lapses_after_the_lock_and_the_longest_run() {
        let started = at("2026-12-01T03:00:00Z");
        let lapses = lock_lapses(started, Duration::days(7));
        assert_eq!(lapses, started + Duration::days(7) + Duration::minutes(15));
        assert!(lapses > started + Duration::days(7), "a backup finishing late is still locked");
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn good(n: u128, when: DateTime<Utc>) -> BackupFacts {
        BackupFacts {
            id: Uuid::from_u128(n),
            started_at: when,
            succeeded: true,
            drill_succeeded: false,
        }
    }

    fn daily_backups(from: DateTime<Utc>, days: i64) -> Vec<BackupFacts> {
        (0..days).map(|d| good(d as u128 + 1, from + Duration::days(d))).collect()
    }

    #[test]
    fn a_year_of_daily_backups_keeps_seven_days_four_weeks_and_twelve_months() {
        let backups = daily_backups(at("2026-01-01T03:00:00Z"), 365);
        let now = at("2027-01-01T02:00:00Z");
        let rotation = Rotation { keep_last: 0, ..Rotation::default() };
        let kept: Vec<DateTime<Utc>> = {
            let ids: Vec<Uuid> = decide(&backups, now, &rotation)
                .into_iter()
                .filter(|d| !d.expires())
                .map(|d| d.id)
                .collect();
            let mut dates: Vec<_> =
                backups.iter().filter(|b| ids.contains(&b.id)).map(|b| b.started_at).collect();
            dates.sort();
            dates
        };
        let days: Vec<String> = kept.iter().map(|d| d.format("%m-%d").to_string()).collect();
        // Month ends (monthly), the newest of the last four ISO weeks (the week of
        // Thursday 12-31, then Sundays) and the last seven days.
        assert_eq!(
            days,
            [
                "01-31", "02-28", "03-31", "04-30", "05-31", "06-30", "07-31", "08-31", "09-30",
                "10-31", "11-30", "12-13", "12-20", "12-25", "12-26", "12-27", "12-28", "12-29",
                "12-30", "12-31"
            ]
        );
    }

    #[test]
    fn a_gap_does_not_shorten_the_history() {
        // Ten days of backups, then none for three weeks.
        let backups = daily_backups(at("2026-03-01T03:00:00Z"), 10);
        let now = at("2026-04-01T03:00:00Z");
        let rotation = Rotation { keep_last: 0, weekly: 0, monthly: 0, ..Rotation::default() };
        assert_eq!(
            to_expire(&backups, now, &rotation).len(),
            3,
            "the last seven days that have a backup are kept"
        );
    }

    #[test]
    fn the_newest_restorable_backup_stays_even_when_newer_ones_never_restored() {
        let mut backups = daily_backups(at("2026-01-01T03:00:00Z"), 60);
        backups[0].drill_succeeded = true;
        let now = at("2026-03-02T04:00:00Z");
        let rotation = Rotation {
            keep_last: 7,
            daily: 7,
            weekly: 0,
            monthly: 0,
            yearly: 0,
            failed_age: Duration::days(7),
        };
        let decisions = decide(&backups, now, &rotation);
        let first = decisions.iter().find(|d| d.id == backups[0].id).unwrap();
        assert_eq!(first.keep, [Keep::LastRestorable]);
        assert_eq!(
            removal_date(&backups, backups[0].id, now, &rotation),
            Some(first_drilled_day(&backups, now))
        );
    }

    // The first simulated day adds a drilled backup, which takes over.
    fn first_drilled_day(backups: &[BackupFacts], now: DateTime<Utc>) -> DateTime<Utc> {
        let newest = backups.iter().map(|b| b.started_at).max().unwrap();
        newest.max(now - Duration::days(1)) + Duration::days(1)
    }

    #[test]
    fn failed_backups_are_kept_a_week_then_go() {
        let now = at("2026-06-30T12:00:00Z");
        let mut fresh = good(1, now - Duration::days(2));
        fresh.succeeded = false;
        let mut old = good(2, now - Duration::days(9));
        old.succeeded = false;
        let keeper = good(3, now - Duration::days(400));
        assert_eq!(to_expire(&[fresh, old.clone(), keeper], now, &Rotation::default()), [old.id]);
    }

    #[test]
    fn removal_dates_follow_the_periods() {
        let backups = daily_backups(at("2026-01-01T03:00:00Z"), 90);
        let now = at("2026-03-31T04:00:00Z");
        let rotation = Rotation {
            keep_last: 7,
            daily: 7,
            weekly: 4,
            monthly: 12,
            yearly: 0,
            failed_age: Duration::days(7),
        };
        // January 31st is January's newest: a monthly backup, gone when twelve newer months have one:
        let january =
            backups.iter().find(|b| b.started_at.format("%m-%d").to_string() == "01-31").unwrap();
        let removed = removal_date(&backups, january.id, now, &rotation).unwrap();
        assert_eq!(
            removed.format("%Y-%m").to_string(),
            "2027-01",
            "February to December, then January 2027"
        );
        // A mid-week day goes as soon as it is out of the last seven; one already out goes now.
        let day = |md: &str| {
            backups.iter().find(|b| b.started_at.format("%m-%d").to_string() == md).unwrap().id
        };
        let on =
            |id| removal_date(&backups, id, now, &rotation).unwrap().format("%m-%d").to_string();
        assert_eq!(on(day("03-26")), "04-02");
        assert_eq!(on(day("03-24")), "03-31");
    }

    fn arb_backups() -> impl Strategy<Value = (Vec<BackupFacts>, DateTime<Utc>)> {
        // Start a little before a year boundary; minutes over ~27 months, with gaps.
        let base = at("2025-11-20T00:00:00Z");
        (
            prop::collection::vec(
                (
                    0i64..(820 * 24 * 60),
                    any::<bool>(),
                    prop::bool::weighted(0.15),
                    prop::bool::weighted(0.9),
                ),
                0..120,
            ),
            0i64..(30 * 24 * 60),
        )
            .prop_map(move |(rows, after)| {
                let backups: Vec<BackupFacts> = rows
                    .into_iter()
                    .enumerate()
                    .map(|(i, (minute, _, drilled, ok))| BackupFacts {
                        id: Uuid::from_u128(i as u128 + 1),
                        started_at: base + Duration::minutes(minute),
                        succeeded: ok,
                        drill_succeeded: ok && drilled,
                    })
                    .collect();
                let now = base + Duration::minutes(820 * 24 * 60 + after);
                (backups, now)
            })
    }

    fn arb_rotation() -> impl Strategy<Value = Rotation> {
        (0usize..10, 0usize..10, 0usize..6, 0usize..14, 0usize..3).prop_map(
            |(keep_last, daily, weekly, monthly, yearly)| Rotation {
                keep_last,
                daily,
                weekly,
                monthly,
                yearly,
                failed_age: Duration::days(7),
            },
        )
    }

    fn newest_per_period(
        backups: &[BackupFacts],
        n: usize,
        period: impl Fn(NaiveDate) -> (i32, u32),
    ) -> Vec<Uuid> {
        let mut good: Vec<&BackupFacts> = backups.iter().filter(|b| b.succeeded).collect();
        good.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
        let mut periods: Vec<(i32, u32)> = Vec::new();
        let mut picked = Vec::new();
        for b in good {
            let p = period(b.started_at.date_naive());
            if !periods.contains(&p) {
                if periods.len() == n {
                    break;
                }
                periods.push(p);
                picked.push(b.id);
            }
        }
        picked
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn gfs_keeps_what_it_promises((backups, now) in arb_backups(), rotation in arb_rotation()) {
            let expired: HashSet<Uuid> = to_expire(&backups, now, &rotation).into_iter().collect();
            let mut good: Vec<&BackupFacts> = backups.iter().filter(|b| b.succeeded).collect();
            good.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
            // The newest N good ones.
            for b in good.iter().take(rotation.keep_last) {
                prop_assert!(!expired.contains(&b.id));
            }
            // The newest backup a drill proved.
            if let Some(b) = good.iter().find(|b| b.drill_succeeded) {
                prop_assert!(!expired.contains(&b.id));
            }
            // The newest of each of the last n days, ISO weeks, months, years that have one.
            let per: [(usize, Period); 4] = [
                (rotation.daily, |d| (d.year(), d.ordinal())),
                (rotation.weekly, |d| (d.iso_week().year(), d.iso_week().week())),
                (rotation.monthly, |d| (d.year(), d.month())),
                (rotation.yearly, |d| (d.year(), 0)),
            ];
            for (n, period) in per {
                for id in newest_per_period(&backups, n, period) {
                    prop_assert!(!expired.contains(&id));
                }
            }
            // Bounded: never more good backups than the rules can name.
            let kept_good = good.iter().filter(|b| !expired.contains(&b.id)).count();
            prop_assert!(kept_good <= rotation.keep_last + rotation.daily + rotation.weekly + rotation.monthly + rotation.yearly + 1);
            // Failed backups go after their investigation window, never before.
            for b in backups.iter().filter(|b| !b.succeeded) {
                prop_assert_eq!(expired.contains(&b.id), now - b.started_at >= rotation.failed_age);
            }
            // Stable: rotating what was kept expires nothing more.
            let kept: Vec<BackupFacts> = backups.iter().filter(|b| !expired.contains(&b.id)).cloned().collect();
            prop_assert!(to_expire(&kept, now, &rotation).is_empty());
        }

        #[test]
        fn a_removal_date_is_when_the_rotation_actually_removes((backups, now) in arb_backups(), rotation in arb_rotation()) {
            prop_assume!(!backups.is_empty());
            let target = backups[0].id;
            if let Some(when) = removal_date(&backups, target, now, &rotation) {
                prop_assert!(when >= now);
            }
        }
    }
}

//! The emulator's settings, read once from the environment at install:
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `TRILEMMA_EMU_SCHEDULE` | `forward`, `reverse` or `shuffle:SEED`: the order of blocks and of the threads of a block | `forward` |
//! | `TRILEMMA_EMU_MEMORY` | bytes of device memory each emulated GPU reports and enforces | 4 GiB |
//! | `TRILEMMA_EMU_DEVICES` | how many emulated GPUs | 1 |
//! | `TRILEMMA_EMU_TAKEN_AFTER` | `N:BYTES`: after the N-th allocation each GPU has BYTES less (another process took them): reported and enforced | none |
//! | `TRILEMMA_EMU_STATS` | file the counters are written to as JSON at process exit | none |
//! | `TRILEMMA_EMU_MEMCHECK` | `0` runs the unchecked kernel build (faster, no bounds checks) | on |
//! | `TRILEMMA_EMU_INITCHECK` | `0` leaves fresh memory unfilled instead of the NaN pattern | on |
//! | `TRILEMMA_EMU_RACECHECK` | `1` checks shared-memory accesses for hazards between warps (needs memcheck) | off |
//! | `TRILEMMA_EMU_SMS` | multiprocessors the emulated GPU reports (launch heuristics only) | 8 |

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The order in which the blocks of a grid are dispatched and the threads of a block are started and
/// resumed. A kernel whose result depends on it has a race.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    Forward,
    Reverse,
    /// A seeded shuffle, different for every launch and block, reproducible from the seed.
    Shuffle(u64),
}

impl Schedule {
    pub fn parse(s: &str) -> Result<Schedule, String> {
        match s {
            "forward" => Ok(Schedule::Forward),
            "reverse" => Ok(Schedule::Reverse),
            _ => match s.strip_prefix("shuffle:").map(str::parse::<u64>) {
                Some(Ok(seed)) => Ok(Schedule::Shuffle(seed)),
                _ => Err(format!(
                    "TRILEMMA_EMU_SCHEDULE must be forward, reverse or shuffle:SEED (SEED a u64), got `{s}`"
                )),
            },
        }
    }

    fn encode(self) -> u64 {
        match self {
            Schedule::Forward => 0,
            Schedule::Reverse => 1,
            // Seeds keep 62 bits; the low two bits say which order.
            Schedule::Shuffle(seed) => 2 | (seed << 2),
        }
    }

    fn decode(v: u64) -> Schedule {
        match v & 3 {
            0 => Schedule::Forward,
            1 => Schedule::Reverse,
            _ => Schedule::Shuffle(v >> 2),
        }
    }

    /// `order` (0..n) permuted by this schedule; `salt` distinguishes launches and blocks.
    pub fn permutation(self, n: u32, salt: u64) -> Vec<u32> {
        let mut v: Vec<u32> = (0..n).collect();
        match self {
            Schedule::Forward => {}
            Schedule::Reverse => v.reverse(),
            Schedule::Shuffle(seed) => {
                let mut state = seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                for i in (1..v.len()).rev() {
                    let j = (splitmix64(&mut state) % (i as u64 + 1)) as usize;
                    v.swap(i, j);
                }
            }
        }
        v
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[derive(Debug)]
pub struct Config {
    schedule: AtomicU64,
    pub memory_bytes: u64,
    pub devices: u32,
    /// After this many allocations, this many bytes fewer per GPU (`TRILEMMA_EMU_TAKEN_AFTER`).
    pub taken_after: Option<(u64, u64)>,
    pub stats_path: Option<PathBuf>,
    pub memcheck: bool,
    pub initcheck: bool,
    pub racecheck: bool,
    pub multiprocessors: u32,
}

fn parse_u64(var: &str, default: u64, min: u64, max: u64) -> Result<u64, String> {
    match std::env::var(var) {
        Err(_) => Ok(default),
        Ok(s) => match s.trim().parse::<u64>() {
            Ok(v) if (min..=max).contains(&v) => Ok(v),
            _ => Err(format!(
                "{var} must be an integer in {min}..={max}, got `{s}`"
            )),
        },
    }
}

/// `TRILEMMA_EMU_TAKEN_AFTER=N:BYTES`.
fn parse_taken_after() -> Result<Option<(u64, u64)>, String> {
    let Ok(s) = std::env::var("TRILEMMA_EMU_TAKEN_AFTER") else {
        return Ok(None);
    };
    let parsed = s
        .split_once(':')
        .and_then(|(n, b)| Some((n.trim().parse().ok()?, b.trim().parse().ok()?)));
    parsed
        .map(Some)
        .ok_or_else(|| format!("TRILEMMA_EMU_TAKEN_AFTER must be N:BYTES, got `{s}`"))
}

fn parse_flag(var: &str) -> Result<bool, String> {
    match std::env::var(var).as_deref() {
        Err(_) | Ok("1") => Ok(true),
        Ok("0") => Ok(false),
        Ok(s) => Err(format!("{var} must be 0 or 1, got `{s}`")),
    }
}

impl Config {
    pub fn from_env() -> Result<Config, String> {
        let schedule = match std::env::var("TRILEMMA_EMU_SCHEDULE") {
            Ok(s) => Schedule::parse(s.trim())?,
            Err(_) => Schedule::Forward,
        };
        Ok(Config {
            schedule: AtomicU64::new(schedule.encode()),
            memory_bytes: parse_u64("TRILEMMA_EMU_MEMORY", 4 << 30, 1 << 20, 1 << 40)?,
            devices: parse_u64("TRILEMMA_EMU_DEVICES", 1, 1, 16)? as u32,
            taken_after: parse_taken_after()?,
            stats_path: std::env::var_os("TRILEMMA_EMU_STATS").map(PathBuf::from),
            memcheck: parse_flag("TRILEMMA_EMU_MEMCHECK")?,
            initcheck: parse_flag("TRILEMMA_EMU_INITCHECK")?,
            racecheck: match std::env::var("TRILEMMA_EMU_RACECHECK").as_deref() {
                Err(_) | Ok("0") => false,
                Ok("1") => true,
                Ok(s) => return Err(format!("TRILEMMA_EMU_RACECHECK must be 0 or 1, got `{s}`")),
            },
            multiprocessors: parse_u64("TRILEMMA_EMU_SMS", 8, 1, 1024)? as u32,
        })
    }

    pub fn schedule(&self) -> Schedule {
        Schedule::decode(self.schedule.load(Ordering::Relaxed))
    }

    pub fn set_schedule(&self, s: Schedule) {
        self.schedule.store(s.encode(), Ordering::Relaxed)
    }
}

static CONFIG: OnceLock<Config> = OnceLock::new();

pub fn set(c: Config) {
    let _ = CONFIG.set(c);
}

/// The installed configuration. Only reachable after install (every driver entry point is).
pub fn get() -> &'static Config {
    CONFIG.get_or_init(|| Config::from_env().unwrap_or_else(|_| Config::fallback()))
}

impl Config {
    fn fallback() -> Config {
        Config {
            schedule: AtomicU64::new(0),
            memory_bytes: 4 << 30,
            devices: 1,
            taken_after: None,
            stats_path: None,
            memcheck: true,
            initcheck: true,
            racecheck: false,
            multiprocessors: 8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_and_permute() {
        assert_eq!(Schedule::parse("forward").unwrap(), Schedule::Forward);
        assert_eq!(Schedule::parse("reverse").unwrap(), Schedule::Reverse);
        assert_eq!(
            Schedule::parse("shuffle:42").unwrap(),
            Schedule::Shuffle(42)
        );
        assert!(Schedule::parse("shuffle:x").is_err());
        assert!(Schedule::parse("sideways").is_err());
        assert_eq!(Schedule::Reverse.permutation(4, 0), vec![3, 2, 1, 0]);
        let p = Schedule::Shuffle(7).permutation(100, 3);
        let mut s = p.clone();
        s.sort();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
        assert_ne!(p, (0..100).collect::<Vec<_>>());
        assert_eq!(p, Schedule::Shuffle(7).permutation(100, 3));
        for s in [Schedule::Forward, Schedule::Reverse, Schedule::Shuffle(5)] {
            assert_eq!(Schedule::decode(s.encode()), s);
        }
    }
}

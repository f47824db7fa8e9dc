//! `connections().plan_refreshes` over 10k, 100k and 1M connections: time per connection, each
//! size against the 10k run (the baseline). The window holds every candidate twice over, so the
//! plan places them all (no overflow) with the usual share of slot collisions. Only the planning
//! is timed: building the ids, and dropping the plan, are not.

use std::time::{Duration, Instant};

use basiq::id::ConnectionId;

use crate::{report, Env, Target};

/// Finishes freeing the last plan before the next run is timed. glibc's `free` parks small
/// chunks (a plan's million ids) on its fast lists and coalesces them at the next large
/// allocation, which would be the next plan's first buffer: without this, each timed run but
/// the first would pay for dropping the previous plan (at 1M, a random walk over its ids, about
/// as long as planning them). Harmless with any other allocator.
fn settle_allocator() {
    drop(std::hint::black_box(Vec::<u8>::with_capacity(64 * 1024)));
}

/// Untimed runs before the timed ones, at each size: at least this many, for at least
/// `WARM_UP_TIME`: a 10k run takes about a millisecond, and in some processes the first ones
/// ran 15–20 % slower than 10k runs made later in the same process.
const WARM_UP_RUNS: u32 = 2;
const WARM_UP_TIME: Duration = Duration::from_millis(200);

/// `n` connection ids, distinct from those of every other `list` number: UUID-shaped, as Basiq's.
fn connection_ids(n: usize, list: usize) -> Result<Vec<ConnectionId>, String> {
    (list * n..(list + 1) * n)
        .map(|i| {
            ConnectionId::new(format!(
                "{:08x}-4a1b-4c2d-8e3f-{i:012x}",
                i * 2_654_435_761 % (1 << 32)
            ))
        })
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())
}

/// Best of a few runs per size (the least disturbed by the other processes on the machine),
/// after untimed ones (`WARM_UP_RUNS`, `WARM_UP_TIME`). The sizes run one after the other, not
/// in turns: each 1M run made right after runs at the other sizes was slower (95–109 ns a
/// connection in six processes, against 69–88 with the sizes one after the other), which
/// measures the state the other sizes left (the allocator's heap, the caches), not planning.
///
/// Each run plans a list of its own, built just before it (so in the cache as a caller's fresh
/// list would be): planning the same list again and again lets the processor learn the
/// branches that depend on its data, which at 10k it does (the sweep took half as long on a
/// list it had just planned), while no caller plans one list twice in a row, and a 1M list is
/// too long to learn. The previous list is kept until the next one is built, so the new one
/// never reuses the memory of the one just planned.
pub fn run(env: &Env) -> Result<(), String> {
    let client = env.blocking_client()?;
    let now = time::OffsetDateTime::now_utc();
    // The default cap: 10 per minute, one slot every 6 s.
    let spacing = Duration::from_secs(6);
    let mut per_connection = Vec::new();
    for (n, runs) in [(10_000usize, 20u32), (100_000, 5), (1_000_000, 5)] {
        let window = spacing * u32::try_from(2 * n).unwrap_or(u32::MAX);
        let runs = if env.quick { runs.div_ceil(3) } else { runs };
        let mut ids = Vec::new();
        let mut plan_once = |list: usize| -> Result<Duration, String> {
            let fresh = connection_ids(n, list)?;
            drop(std::mem::replace(&mut ids, fresh));
            settle_allocator();
            let t = Instant::now();
            let plan = client.connections().plan_refreshes(&ids, window, now);
            let elapsed = t.elapsed();
            assert_eq!(plan.planned.len(), n, "every candidate fits the window");
            drop(std::hint::black_box(plan));
            settle_allocator();
            Ok(elapsed)
        };
        // Untimed runs first: the first plans at a size fault in fresh pages for buffers
        // the allocator keeps afterwards (at 1M, 40k and 14k page faults, then 10k a run: the
        // plan itself, too large for the allocator to keep).
        let mut lists = 0..;
        let warm_up = Instant::now();
        for _ in 0..WARM_UP_RUNS {
            plan_once(lists.next().unwrap_or_default())?;
        }
        while warm_up.elapsed() < WARM_UP_TIME {
            plan_once(lists.next().unwrap_or_default())?;
        }
        let mut best = Duration::MAX;
        for _ in 0..runs {
            best = best.min(plan_once(lists.next().unwrap_or_default())?);
        }
        per_connection.push((n, best.as_secs_f64() * 1e9 / n as f64));
    }
    let base = per_connection.first().map_or(0.0, |(_, ns)| *ns);
    for (n, ns) in per_connection {
        let label = match n {
            10_000 => "10k",
            100_000 => "100k",
            _ => "1M",
        };
        report(
            &format!("plan_refreshes per connection, {label} vs 10k"),
            ns,
            base,
            "ns",
            if n == 1_000_000 {
                Target::RatioAtMost(1.3)
            } else {
                Target::None
            },
        );
    }
    Ok(())
}

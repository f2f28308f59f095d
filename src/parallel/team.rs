//! A team of helper threads that wait for the next piece of work by spinning briefly before
//! they sleep, so that handing a split time loop to the other core costs about a
//! microsecond instead of the tens that waking a sleeping pool worker costs.
//!
//! One helper per core besides the caller's, started on first use and kept for the life of
//! the process. A job is a set of tasks, one per thread: the caller runs the first, helper
//! `i` the task `i + 1`, all at the same time (so tasks may meet at a barrier). One job at
//! a time: a call that finds the team busy (another thread's job, or a task of the team's
//! own job splitting its work again) gets its tasks back and runs them some other way.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, TryLockError};
use std::time::{Duration, Instant};

/// How long a helper spins for the next job before it sleeps: longer than the gap between
/// the split passes of a training or prediction loop, short enough that an idle program
/// frees the core at once.
const SPIN: Duration = Duration::from_micros(300);

/// Bits of [`Shared::signal`] that hold the job's task count; the rest count jobs.
const TASK_BITS: u32 = 8;

/// A job as the helpers see it: `call(data, i)` runs task `i`.
#[derive(Clone, Copy)]
struct JobRef {
    data: *const (),
    call: unsafe fn(*const (), usize),
}

/// What the caller and the helpers share.
struct Shared {
    /// `jobs << TASK_BITS | tasks`: changes once per job; a helper that sees it change runs
    /// its task when its index is below the task count.
    signal: AtomicUsize,
    /// The current job (a `*mut JobRef` to the caller's stack), valid while `pending > 0`.
    job: AtomicPtr<JobRef>,
    /// Helpers' tasks of the current job not finished yet.
    pending: AtomicUsize,
    /// Set when a helper's task panicked.
    panicked: AtomicBool,
}

/// The helpers and the lock that makes jobs one at a time.
struct Team {
    shared: &'static Shared,
    helpers: Vec<std::thread::Thread>,
    busy: Mutex<()>,
}

/// The process's team, started on first use: one helper per core but the caller's (none
/// on a one-core machine, or when a helper thread could not be started).
fn team() -> &'static Team {
    static TEAM: OnceLock<Team> = OnceLock::new();
    TEAM.get_or_init(|| {
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            signal: AtomicUsize::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            pending: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
        }));
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let helpers = (0..cores.saturating_sub(1).min((1 << TASK_BITS) - 2))
            .map_while(|i| {
                std::thread::Builder::new()
                    .name(format!("rnnkit-{}", i + 1))
                    .spawn(move || helper(shared, i + 1))
                    .ok()
                    .map(|h| h.thread().clone())
            })
            .collect();
        Team {
            shared,
            helpers,
            busy: Mutex::new(()),
        }
    })
}

/// A helper's life: wait for a job, run task `index` when the job has that many, repeat.
fn helper(shared: &'static Shared, index: usize) {
    // The signal's value when the team was made: a job published before this thread got
    // here is still seen as new.
    let mut seen = 0;
    loop {
        seen = wait_for_change(&shared.signal, seen);
        if index >= seen & ((1 << TASK_BITS) - 1) {
            continue;
        }
        // SAFETY: the job's caller published `job` before `signal` (release; read here
        // after an acquire load of `signal`) and keeps the `JobRef` and everything it
        // points to alive until `pending` reaches zero, which needs this helper's decrement
        // below; `index` is below the job's task count, and no other thread runs it.
        let job = unsafe { *shared.job.load(Ordering::Acquire) };
        // SAFETY: as above: `call` is the job's own function for its own `data`.
        if catch_unwind(AssertUnwindSafe(|| unsafe { (job.call)(job.data, index) })).is_err() {
            shared.panicked.store(true, Ordering::Relaxed);
        }
        shared.pending.fetch_sub(1, Ordering::Release);
    }
}

/// Spins until `signal` differs from `seen` (then returns it), sleeping after [`SPIN`].
fn wait_for_change(signal: &AtomicUsize, seen: usize) -> usize {
    let start = Instant::now();
    let mut spins = 0u32;
    loop {
        let now = signal.load(Ordering::Acquire);
        if now != seen {
            return now;
        }
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(64) && start.elapsed() > SPIN {
            // A job published after the load above unparks this thread, and `park`
            // returns at once when that happened before it: no wake-up is lost.
            std::thread::park();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// The tasks of one job, each taken (moved out) exactly once by the thread that runs it.
struct Slots<T> {
    ptr: *mut T,
    cap: usize,
}

impl<T> Slots<T> {
    fn new(tasks: Vec<T>) -> Self {
        let mut tasks = std::mem::ManuallyDrop::new(tasks);
        Slots {
            ptr: tasks.as_mut_ptr(),
            cap: tasks.capacity(),
        }
    }

    /// # Safety
    /// `i` below the number of tasks, and each `i` taken once.
    unsafe fn take(&self, i: usize) -> T {
        // SAFETY: the caller's contract: slot `i` holds a task nobody has moved out.
        unsafe { self.ptr.add(i).read() }
    }
}

impl<T> Drop for Slots<T> {
    /// Frees the storage; every task was moved out (a job waits for all its tasks).
    fn drop(&mut self) {
        // SAFETY: `ptr` and `cap` come from a `Vec<T>` not freed yet; length 0 drops no
        // task (all were moved out).
        drop(unsafe { Vec::from_raw_parts(self.ptr, 0, self.cap) });
    }
}

/// Waits, even while unwinding, until every helper of the current job has finished: the
/// job borrows the caller's stack.
struct AwaitHelpers<'a>(&'a Shared);

impl Drop for AwaitHelpers<'_> {
    fn drop(&mut self) {
        let start = Instant::now();
        let mut spins = 0u32;
        while self.0.pending.load(Ordering::Acquire) != 0 {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) && start.elapsed() > SPIN {
                std::thread::yield_now(); // a helper was descheduled: give way
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

/// Runs `f` on every task at the same time, task 0 on this thread and task `i` on helper
/// `i`; returns the tasks untouched when the team is busy or has fewer threads than
/// tasks. A panic in any task is raised here once all have finished.
pub(crate) fn try_run<T: Send, G: Fn(T) + Sync>(tasks: Vec<T>, f: &G) -> Result<(), Vec<T>> {
    let n = tasks.len();
    if n < 2 {
        return Err(tasks); // nothing to hand over: no team started for it
    }
    let team = team();
    if n > team.helpers.len() + 1 {
        return Err(tasks);
    }
    let _busy = match team.busy.try_lock() {
        Ok(guard) => guard,
        // A task panicked in an earlier job: the team itself is sound (that job waited
        // for every helper), so the lock is taken as it is.
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
        Err(TryLockError::WouldBlock) => return Err(tasks),
    };
    let slots = Slots::new(tasks);
    let ctx: (&Slots<T>, &G) = (&slots, f);

    /// # Safety
    /// `data` points to the job's `(&Slots<T>, &G)`, alive, and task `i` is not taken yet.
    unsafe fn call<T, G: Fn(T)>(data: *const (), i: usize) {
        // SAFETY: the contract above.
        unsafe {
            let (slots, f) = &*(data as *const (&Slots<T>, &G));
            f(slots.take(i))
        }
    }

    let shared = team.shared;
    let mut job = JobRef {
        data: &ctx as *const (&Slots<T>, &G) as *const (),
        call: call::<T, G>,
    };
    shared.job.store(&mut job, Ordering::Relaxed);
    shared.pending.store(n - 1, Ordering::Relaxed);
    let jobs = shared.signal.load(Ordering::Relaxed) >> TASK_BITS;
    shared
        .signal
        .store((jobs.wrapping_add(1) << TASK_BITS) | n, Ordering::Release);
    for h in &team.helpers[..n - 1] {
        h.unpark();
    }
    let wait = AwaitHelpers(shared);
    // SAFETY: task 0 is this thread's; `ctx` lives until the end of this function.
    let mine = catch_unwind(AssertUnwindSafe(|| unsafe { call::<T, G>(job.data, 0) }));
    drop(wait); // every helper has finished: nothing borrows `ctx`, `job` or `slots` now
    if let Err(p) = mine {
        resume_unwind(p);
    }
    if shared.panicked.swap(false, Ordering::Relaxed) {
        panic!("a task of a split loop panicked on a helper thread");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    /// [`try_run`], retried while other tests' jobs hold the team.
    fn run_when_free<T: Send, G: Fn(T) + Sync>(mut tasks: Vec<T>, f: &G) {
        loop {
            match try_run(tasks, f) {
                Ok(()) => return,
                Err(back) => tasks = back,
            }
            std::thread::yield_now();
        }
    }

    /// Tasks run at the same time (they meet at a barrier), each exactly once, and the
    /// team serves job after job.
    #[test]
    fn tasks_run_concurrently_and_once() {
        let n = team().helpers.len() + 1;
        if n < 2 {
            return; // one core: nothing to split
        }
        for round in 0..200 {
            let barrier = Barrier::new(n);
            let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            let tasks: Vec<usize> = (0..n).collect();
            let f = |i: usize| {
                barrier.wait();
                hits[i].fetch_add(round + 1, Ordering::Relaxed);
            };
            run_when_free(tasks, &f);
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == round + 1));
            if round % 50 == 0 {
                std::thread::sleep(SPIN * 2); // the helpers sleep, and are woken
            }
        }
    }

    /// A task's panic reaches the caller after every task ended, and the team still works.
    #[test]
    fn a_panic_reaches_the_caller() {
        if team().helpers.is_empty() {
            return;
        }
        let r = catch_unwind(|| {
            run_when_free(vec![0, 1], &|i: usize| {
                if i == 1 {
                    panic!("task {i}");
                }
            });
        });
        assert!(r.is_err());
        let done = AtomicUsize::new(0);
        run_when_free(vec![0, 1], &|_| {
            done.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(done.load(Ordering::Relaxed), 2);
    }
}

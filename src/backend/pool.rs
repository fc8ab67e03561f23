//! One persistent set of worker threads for the CPU backend: `run(parts, f)` calls `f(p)` for
//! every part p and returns when all have returned. No thread is spawned per call.
//!
//! Parts are claimed from a shared counter by the caller and by whichever workers are awake,
//! so a worker that the OS has descheduled (a busy shared machine) delays nothing: the caller
//! takes its parts. A training step's ops follow each other within microseconds, so workers
//! spin briefly for the next job before they park (a condvar wake costs tens of µs, more than
//! a small product). Which thread runs which part never changes a result: each part writes its
//! own outputs, and the caller picks the partition from the shape alone.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle worker spins for the next job before it parks: longer than the serial
/// stretch between two split ops of a step (at 20 µs it parked about once per lecture-size
/// step, and a wake-up costs tens of µs), short enough not to burn a shared machine for long.
const SPIN: Duration = Duration::from_micros(100);

/// A job's closure with its lifetime erased: `run` keeps the borrow alive until no worker is
/// registered on the job any more (see `Shared::active`).
#[derive(Clone, Copy)]
struct Job {
    f: *const (dyn Fn(usize) + Sync),
    parts: usize,
}
// Safety: the pointee is Sync and outlives every use (see `run`).
unsafe impl Send for Job {}

struct Shared {
    /// The current job; workers register under this lock, and only while it is Some.
    job: Mutex<Option<Job>>,
    /// Moves once per job, so a spinning worker sees new work without taking the lock.
    epoch: AtomicU64,
    /// The next unclaimed part of the current job.
    next: AtomicUsize,
    /// Parts of the current job that have returned.
    finished: AtomicUsize,
    /// Workers registered on the current job; `run` returns only when it is back to 0.
    active: AtomicUsize,
    /// Workers parked on `wake`.
    sleepers: AtomicUsize,
    panicked: AtomicBool,
    shutdown: AtomicBool,
    wake: Condvar,
}

pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    /// A pool that runs up to `threads` parts at once (the caller counts as one).
    pub fn new(threads: usize) -> Pool {
        let shared = Arc::new(Shared {
            job: Mutex::new(None),
            epoch: AtomicU64::new(0),
            next: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            wake: Condvar::new(),
        });
        let mut workers = Vec::new();
        for i in 1..threads.max(1) {
            let s = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("wgtrain-cpu-{i}"))
                .spawn(move || worker(&s));
            // A pool with fewer threads is slower, never wrong: the caller runs every part.
            match spawned {
                Ok(h) => workers.push(h),
                Err(_) => break,
            }
        }
        Pool { shared, workers }
    }

    /// Threads from WGTRAIN_CPU_THREADS when set (a positive integer), else one per core.
    pub fn from_env() -> Pool {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = std::env::var("WGTRAIN_CPU_THREADS")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(cores);
        Pool::new(threads)
    }

    /// Parts that can run at once.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Calls `f(p)` for every p in 0..parts and returns when all calls have returned.
    pub fn run(&self, parts: usize, f: &(dyn Fn(usize) + Sync)) {
        if parts <= 1 || self.workers.is_empty() {
            (0..parts).for_each(f);
            return;
        }
        let s = &*self.shared;
        // Erase the lifetime; `run` does not return while a worker could still call `f`.
        let f_static = unsafe {
            std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), *const (dyn Fn(usize) + Sync)>(
                f as *const _,
            )
        };
        {
            let mut job = lock(&s.job);
            s.next.store(0, Ordering::Relaxed);
            s.finished.store(0, Ordering::Relaxed);
            *job = Some(Job { f: f_static, parts });
            s.epoch.fetch_add(1, Ordering::Release);
            if s.sleepers.load(Ordering::Relaxed) > 0 {
                s.wake.notify_all();
            }
        }
        let mine = claim_parts(s, f, parts);
        let mut spins = 0u32;
        while s.finished.load(Ordering::Acquire) < parts {
            backoff(&mut spins);
        }
        // No worker can register once the job is gone; wait for those that did to leave.
        *lock(&s.job) = None;
        while s.active.load(Ordering::Acquire) > 0 {
            backoff(&mut spins);
        }
        if let Some(p) = mine {
            resume_unwind(p);
        }
        if s.panicked.swap(false, Ordering::Relaxed) {
            panic!("a part run on a cpu worker thread panicked");
        }
    }
}

fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins < 1 << 12 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs unclaimed parts until none are left; a part that panics is counted as finished (so
/// nobody waits for it forever) and the first panic is returned.
fn claim_parts(
    s: &Shared,
    f: &(dyn Fn(usize) + Sync),
    parts: usize,
) -> Option<Box<dyn std::any::Any + Send>> {
    let mut first = None;
    loop {
        let p = s.next.fetch_add(1, Ordering::Relaxed);
        if p >= parts {
            return first;
        }
        let r = catch_unwind(AssertUnwindSafe(|| f(p)));
        s.finished.fetch_add(1, Ordering::Release);
        if let Err(e) = r {
            first.get_or_insert(e);
        }
    }
}

fn worker(s: &Shared) {
    let mut seen = 0u64;
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        while s.epoch.load(Ordering::Acquire) == seen {
            if s.shutdown.load(Ordering::Relaxed) {
                return;
            }
            spins = spins.wrapping_add(1);
            // Reading the clock costs more than a spin: look at it every 32 spins only.
            if !spins.is_multiple_of(32) || start.elapsed() < SPIN {
                std::hint::spin_loop();
                continue;
            }
            let mut g = lock(&s.job);
            s.sleepers.fetch_add(1, Ordering::Relaxed);
            // `run` publishes and notifies under this lock: no wake-up is lost.
            while s.epoch.load(Ordering::Acquire) == seen && !s.shutdown.load(Ordering::Relaxed) {
                g = s.wake.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            s.sleepers.fetch_sub(1, Ordering::Relaxed);
        }
        let job = {
            let g = lock(&s.job);
            seen = s.epoch.load(Ordering::Acquire);
            let job = *g;
            if job.is_some() {
                s.active.fetch_add(1, Ordering::AcqRel);
            }
            job
        };
        if let Some(job) = job {
            // Safety: registered in `active` while the job was current, so `run` keeps `f`
            // alive until the decrement below.
            let f = unsafe { &*job.f };
            if claim_parts(s, f, job.parts).is_some() {
                s.panicked.store(true, Ordering::Relaxed);
            }
            s.active.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        {
            let _g = lock(&self.shared.job);
            self.shared.shutdown.store(true, Ordering::Relaxed);
            self.shared.wake.notify_all();
        }
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_runs_once_and_borrows_stay_valid() {
        let pool = Pool::new(3);
        for parts in [0, 1, 2, 3, 5, 9] {
            let hits: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
            for _ in 0..200 {
                pool.run(parts, &|p| {
                    hits[p].fetch_add(1, Ordering::Relaxed);
                });
            }
            for (p, h) in hits.iter().enumerate() {
                assert_eq!(h.load(Ordering::Relaxed), 200, "part {p} of {parts}");
            }
        }
    }

    #[test]
    fn parked_workers_wake_for_the_next_job() {
        let pool = Pool::new(2);
        for _ in 0..3 {
            std::thread::sleep(SPIN * 4);
            let n = AtomicUsize::new(0);
            pool.run(2, &|_| {
                n.fetch_add(1, Ordering::Relaxed);
            });
            assert_eq!(n.load(Ordering::Relaxed), 2);
        }
    }

    #[test]
    fn parts_write_disjoint_outputs_in_parallel() {
        let pool = Pool::new(2);
        let out: Vec<AtomicU64> = (0..1000).map(|_| AtomicU64::new(0)).collect();
        pool.run(4, &|p| {
            for (i, o) in out.iter().enumerate().skip(p * 250).take(250) {
                o.store((i * i) as u64, Ordering::Relaxed);
            }
        });
        assert!(
            out.iter()
                .enumerate()
                .all(|(i, o)| o.load(Ordering::Relaxed) == (i * i) as u64)
        );
    }

    #[test]
    fn a_panicking_part_reaches_the_caller_and_the_pool_survives() {
        let pool = Pool::new(2);
        for bad in [0, 1] {
            let r = catch_unwind(AssertUnwindSafe(|| {
                pool.run(2, &|p| {
                    if p == bad {
                        panic!("part {bad} fails");
                    }
                })
            }));
            assert!(r.is_err(), "part {bad}'s panic must reach the caller");
            let n = AtomicUsize::new(0);
            pool.run(2, &|_| {
                n.fetch_add(1, Ordering::Relaxed);
            });
            assert_eq!(n.load(Ordering::Relaxed), 2);
        }
    }
}

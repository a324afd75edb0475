//! The mirror's queue, workers and record writer. In `logging` the data plane hands a finished
//! [`Tee`] to a bounded queue with `try_send`: a full queue drops the job (counted), so the
//! client's response is never delayed by shadow work. Workers on the control runtime send the copy
//! to the other pool through the one client to the controllers (its control lane), compare and
//! redact; the record writer hands each record to the file, Kafka, the live report and the ramp.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use switchyard_rules::Pool;
use switchyard_shadow::{
    compare, Comparison, ComparisonRecord, JsonLinesFile, Observed, Outcome, RecordContext, Redactor, Report,
    SkipReason,
};
use tokio::sync::{mpsc, Semaphore};

use crate::control::ramp::window::LiveCounters;
use crate::data::credential::secret_forms;
use crate::data::pools::Pools;
use crate::data::request_id::REQUEST_ID_HEADER;
use crate::data::upstream::fields::Framing;
use crate::data::upstream::{Client, Fault, Lane, Limits, RequestBody};
use crate::kafka::sink::KafkaSink;
use crate::ops::clock::now_ms;
use crate::ops::config::ShadowConfig;
use crate::ops::metrics::Metrics;
use crate::shadow::tee::{sampled, Tee, SHADOW_FIELD};
use crate::sync::lock;

/// A finished primary exchange, ready to be mirrored.
pub struct Job {
    tee: Tee,
    served_by: Pool,
    request_id: String,
    primary_latency: Duration,
}

pub struct ShadowState {
    queue: mpsc::Sender<Job>,
    pub max_body: usize,
    pub report: Mutex<Report>,
    /// Jobs queued or running (a stop waits for them, up to a bound).
    pending: AtomicUsize,
    /// Records also go here; flushed at a stop.
    kafka: Option<KafkaSink>,
    metrics: Arc<Metrics>,
}

impl ShadowState {
    /// Hands a finished exchange to the workers without waiting; drops it (counted) when the
    /// queue is full.
    pub fn submit(&self, tee: Tee, served_by: Pool, request_id: String, primary_latency: Duration) {
        self.pending.fetch_add(1, Relaxed);
        match self.queue.try_send(Job { tee, served_by, request_id, primary_latency }) {
            Ok(()) => self.metrics.shadow_queued.increment(1.0),
            Err(_) => {
                self.pending.fetch_sub(1, Relaxed);
                self.metrics.shadow_dropped_queue_full.increment(1);
            }
        }
    }

    /// At a stop: waits up to `timeout` for the queued and running jobs, then for the Kafka
    /// producer's queue. Returns the jobs left unfinished, also counted as dropped (`shutdown`).
    pub async fn flush(&self, timeout: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.pending.load(Relaxed) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = self.pending.load(Relaxed);
        self.metrics.shadow_dropped_shutdown.increment(left as u64);
        if let Some(kafka) = &self.kafka {
            let producer = kafka.clone();
            let rest = deadline.saturating_duration_since(tokio::time::Instant::now());
            // librdkafka's flush blocks; what it cannot deliver in time is counted as failed.
            let _ = tokio::task::spawn_blocking(move || producer.flush(rest)).await;
        }
        left
    }

    pub fn report_json(&self) -> serde_json::Value {
        lock(&self.report).to_json()
    }

    /// The report page, with `marks` (the ramp's steps) on its time axis.
    pub fn report_html(&self, marks: &[switchyard_shadow::Mark]) -> String {
        switchyard_shadow::html::page(&lock(&self.report), marks)
    }
}

/// How long the dispatcher and the record writer rest after a round. Under load the data plane
/// then hands over jobs, and the workers their records, without waking the control runtime for
/// each one, and the record file gets one write per round; after a quiet moment a job starts, and
/// a record is written, as soon as it arrives. Short against the queue: 2 ms of every invocation
/// mirrored at 40,000 a second is 80 jobs, under the default 256.
const GATHER: Duration = Duration::from_millis(2);

/// The most records one round writes.
const ROUND: usize = 1024;

struct Worker {
    /// The copies go to the healthy members of the other pool.
    pools: Arc<Pools>,
    /// The same client as the primaries (and their kept connections).
    client: Client,
    slots: Arc<Semaphore>,
    timeout: Duration,
    /// The largest answer read from a copy.
    max_body: usize,
    instance: String,
    /// Secret field names beyond the built-in list.
    secret_fields: Arc<[String]>,
    /// Every job's one record goes to the writer. Unbounded, yet bounded: each record is a job's,
    /// and the jobs are bounded by the queue and the slots.
    /// Each record with the ramp slot whose gates read it.
    records: mpsc::UnboundedSender<(ComparisonRecord, Option<usize>)>,
    state: Arc<ShadowState>,
    metrics: Arc<Metrics>,
}

/// Where the comparisons go, from one task: the record file, then the Kafka topic, the metrics,
/// the ramp's mismatch gate and the live report. A record the report counts is in the file.
struct RecordWriter {
    file: Option<JsonLinesFile>,
    /// Whether the last write failed: a full disk logs once, not once per record (every record
    /// lost is counted).
    failing: bool,
    state: Arc<ShadowState>,
    metrics: Arc<Metrics>,
    live: Arc<LiveCounters>,
}

impl RecordWriter {
    async fn run(mut self, mut records: mpsc::UnboundedReceiver<(ComparisonRecord, Option<usize>)>) {
        let mut round = Vec::with_capacity(ROUND);
        while records.recv_many(&mut round, ROUND).await > 0 {
            let (taken, slots): (Vec<ComparisonRecord>, Vec<Option<usize>>) = round.drain(..).unzip();
            self.take(&taken, &slots);
            tokio::time::sleep(GATHER).await;
        }
    }

    /// A round of records, each with the ramp slot whose gates read it (`slots[i]` for `round[i]`).
    fn take(&mut self, round: &[ComparisonRecord], slots: &[Option<usize>]) {
        if let Some(file) = &mut self.file {
            match file.write(round) {
                Err(e) => {
                    self.metrics.shadow_record_errors.increment(e.unwritten as u64);
                    if !std::mem::replace(&mut self.failing, true) {
                        tracing::warn!(error = %e, "cannot write comparison records (each failure is counted)");
                    }
                }
                Ok(()) if std::mem::replace(&mut self.failing, false) => {
                    tracing::info!("comparison records are written again")
                }
                Ok(()) => {}
            }
        }
        for (record, slot) in round.iter().zip(slots) {
            self.metrics.shadow_outcome(&record.outcome);
            self.live.comparison(*slot, record);
            if let Some(kafka) = &self.state.kafka {
                kafka.send(record);
            }
        }
        let mut report = lock(&self.state.report);
        round.iter().for_each(|record| report.add(record));
        drop(report);
        self.state.pending.fetch_sub(round.len(), Relaxed);
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot open the shadow record file {path}: {source}")]
pub struct ShadowStartError {
    path: PathBuf,
    #[source]
    source: switchyard_shadow::SinkError,
}

/// Creates the queue and starts the workers on the current runtime.
pub fn start(
    config: &ShadowConfig,
    limits: Limits,
    idle: Duration,
    kafka: Option<KafkaSink>,
    pools: Arc<Pools>,
    metrics: Arc<Metrics>,
    live: Arc<LiveCounters>,
) -> Result<Arc<ShadowState>, ShadowStartError> {
    let (tx, mut rx) = mpsc::channel::<Job>(config.queue);
    let state = Arc::new(ShadowState {
        queue: tx,
        max_body: config.max_body_bytes,
        report: Mutex::new(Report::new(config.noise, config.report)),
        pending: AtomicUsize::new(0),
        kafka,
        metrics: Arc::clone(&metrics),
    });
    let file = if config.records_file.as_os_str().is_empty() {
        None
    } else {
        let file = JsonLinesFile::open(&config.records_file, config.rotate_bytes, config.keep_files)
            .map_err(|source| ShadowStartError { path: config.records_file.clone(), source })?;
        Some(file)
    };
    let (records, written) = mpsc::unbounded_channel();
    let writer = RecordWriter { file, failing: false, state: Arc::clone(&state), metrics: Arc::clone(&metrics), live };
    tokio::spawn(writer.run(written));
    let worker = Arc::new(Worker {
        pools,
        client: Client::new(Lane::Control, limits, idle, &metrics),
        slots: Arc::new(Semaphore::new(config.max_in_flight)),
        timeout: Duration::from_millis(config.timeout_ms),
        max_body: config.max_body_bytes,
        instance: config.instance_name(),
        secret_fields: config.secret_fields.iter().map(|f| f.to_ascii_lowercase()).collect(),
        records,
        state: Arc::clone(&state),
        metrics,
    });
    tokio::spawn(async move {
        // One job out of the queue at a time, each waiting for a slot: the queue stays the bound.
        while let Some(job) = rx.recv().await {
            worker.start(job).await;
            while let Ok(job) = rx.try_recv() {
                worker.start(job).await;
            }
            tokio::time::sleep(GATHER).await;
        }
    });
    Ok(state)
}

/// One copy's answer.
struct Answer {
    status: Option<u16>,
    body: Bytes,
    latency_ms: f64,
    timed_out: bool,
    error: Option<String>,
    /// The answer's `X-Request-ID`.
    transaction_id: Option<String>,
}

impl Answer {
    fn observed(&self, blocking: bool) -> Observed<'_> {
        Observed {
            status: self.status,
            body: &self.body,
            latency_ms: self.latency_ms,
            timed_out: self.timed_out,
            error: self.error.clone(),
            transaction_id: self.transaction_id.as_deref(),
            blocking,
        }
    }
}

impl Worker {
    /// Runs `job` in a task of its own once a slot is free.
    async fn start(self: &Arc<Self>, job: Job) {
        self.metrics.shadow_queued.decrement(1.0);
        let Ok(slot) = Arc::clone(&self.slots).acquire_owned().await else { return };
        let worker = Arc::clone(self);
        tokio::spawn(async move {
            worker.metrics.shadow_in_flight.increment(1.0);
            // Boxed: the task then holds a pointer, not the whole exchange's state, which tokio
            // would otherwise copy when it spawns the task and again when it completes.
            let ramp_slot = job.tee.ramp_slot;
            let record = Box::pin(worker.run(job)).await;
            worker.metrics.shadow_in_flight.decrement(1.0);
            drop(slot);
            if worker.records.send((record, ramp_slot)).is_err() {
                // The writer is gone (the runtime is stopping): the record is lost, not pending.
                worker.state.pending.fetch_sub(1, Relaxed);
            }
        });
    }

    async fn run(&self, job: Job) -> ComparisonRecord {
        let Job { tee, served_by, request_id, primary_latency } = job;
        let ctx = RecordContext {
            instance: &self.instance,
            request_id: &request_id,
            action: &tee.action,
            served_by: served_by.as_str(),
            time_ms: now_ms(),
        };
        if let Some(reason) = tee.skipped {
            skipped_record(&ctx, reason)
        } else {
            let primary = Answer {
                status: tee.response_status,
                body: tee.response_body(),
                latency_ms: primary_latency.as_secs_f64() * 1000.0,
                timed_out: false,
                error: None,
                transaction_id: tee.response_transaction_id.clone(),
            };
            match self.compare_copies(&tee, served_by, &primary).await {
                Ok((comparison, control)) => {
                    // Only differences carry values of the answers, so only they need the caller's
                    // credential in its every form to redact.
                    let forms = if comparison.differences.is_empty() {
                        Vec::new()
                    } else {
                        tee.authorization().map(secret_forms).unwrap_or_default()
                    };
                    let secrets: Vec<&str> = forms.iter().map(String::as_str).collect();
                    let redactor =
                        Redactor::new(tee.policy.redact.clone()).with_fields(Arc::clone(&self.secret_fields));
                    ComparisonRecord::from_comparison(&ctx, comparison, control, &redactor, &secrets)
                }
                Err(reason) => skipped_record(&ctx, reason),
            }
        }
    }

    /// Sends the copy to the other pool (and, when calibrating, a control copy to the serving
    /// pool) and compares. Records are always oriented legacy → scheduler, whichever side served
    /// the client.
    async fn compare_copies(
        &self,
        tee: &Tee,
        served_by: Pool,
        primary: &Answer,
    ) -> Result<(Comparison, Option<Vec<String>>), SkipReason> {
        let body = tee.request_body();
        let candidate = self.send(served_by.other(), tee, body.clone()).await?;
        let control = if sampled(tee.policy.calibrate) {
            let copy = self.send(served_by, tee, body).await?;
            let c = compare(&primary.observed(tee.blocking), &copy.observed(tee.blocking), &tee.policy.ignore);
            let mut paths: Vec<String> = c.differences.into_iter().map(|d| d.path).collect();
            paths.dedup();
            Some(paths)
        } else {
            None
        };
        let (legacy, scheduler) = if served_by == Pool::Legacy { (primary, &candidate) } else { (&candidate, primary) };
        Ok((compare(&legacy.observed(tee.blocking), &scheduler.observed(tee.blocking), &tee.policy.ignore), control))
    }

    /// Sends one copy of the request to a member of `pool`, with the primary's fields (the same
    /// request id) and the shadow marker. Never sent again: a copy runs the action again. An
    /// answer over `max_body_bytes` is not read further.
    async fn send(&self, pool: Pool, tee: &Tee, body: Bytes) -> Result<Answer, SkipReason> {
        let started = Instant::now();
        let failed = |error: String, timed_out: bool| Answer {
            status: None,
            body: Bytes::new(),
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            timed_out,
            error: Some(error),
            transaction_id: None,
        };
        let Some(member) = self.pools.get(pool).pick_healthy() else {
            return Ok(failed(format!("no healthy controller in the {pool} pool"), false));
        };
        // The primary's fields (its request id among them); a body the primary sent with a length
        // or chunked goes with its length, read whole.
        let mut fields = tee.fields.clone();
        fields.insert(SHADOW_FIELD, http::HeaderValue::from_static("1"));
        if fields.remove(http::header::TRANSFER_ENCODING).is_some() || fields.contains_key(http::header::CONTENT_LENGTH)
        {
            Framing::Length(body.len() as u64).apply(&mut fields);
        }
        let mut req = http::Request::new(RequestBody::whole([body]));
        *req.method_mut() = tee.method.clone();
        *req.uri_mut() = match http::Uri::try_from(tee.path_and_query.as_str()) {
            Ok(uri) => uri,
            Err(_) => return Ok(failed("request failed".into(), false)),
        };
        *req.headers_mut() = fields;
        let (head, body) = match self.client.exchange(&member.endpoint, req, self.max_body, self.timeout).await {
            Ok(answer) => answer,
            Err(fault) => return Ok(failed(fault.cause().to_string(), matches!(fault, Fault::Timeout))),
        };
        let Some(body) = body else { return Err(SkipReason::ResponseTooLarge) };
        Ok(Answer {
            status: Some(head.status.as_u16()),
            body,
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            timed_out: false,
            error: None,
            transaction_id: head.headers.get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string),
        })
    }
}

fn skipped_record(ctx: &RecordContext<'_>, reason: SkipReason) -> ComparisonRecord {
    ComparisonRecord {
        schema: switchyard_shadow::SCHEMA_VERSION,
        time_ms: ctx.time_ms,
        instance: ctx.instance.to_string(),
        request_id: ctx.request_id.to_string(),
        action: ctx.action.to_string(),
        served_by: ctx.served_by.to_string(),
        outcome: Outcome::Skipped(reason),
        legacy: Default::default(),
        scheduler: Default::default(),
        differences: Vec::new(),
        differences_truncated: 0,
        control_differences: None,
    }
}

//! Group commit: the tokens, code redemptions and refresh rotations of all
//! requests in flight, written by one task a batch at a time.
//!
//! Every request hands its part to the writer task, which writes everything
//! queued since its last write at once. Tokens of grants minted in the call
//! ([`GrantOrigin::New`]: client credentials, password, implicit) go in one
//! multi-row `INSERT`: one statement, one commit and one round trip to the
//! database however many requests it carries. A batch holding anything else
//! is one transaction: tokens of continued grants ([`GrantOrigin::Existing`]:
//! a redeemed code, an exchange) get the backend's replay check, and the
//! single-use claims, a code redemption
//! ([`Store::redeem_code`](super::Store::redeem_code)) or a refresh-token
//! rotation ([`Store::rotate_refresh`](super::Store::rotate_refresh)), run
//! their `UPDATE … RETURNING` in it; a rotation's new tokens are inserted
//! only if it won.
//!
//! A request returns only after the transaction holding its part has
//! committed, so a token is as durable when its response leaves as it was
//! with a statement per request; only the number of commits changes. Batches
//! form by themselves: while one is being written the next queues, and a
//! lone request under no load is written at once.
//!
//! If a batch fails, each request's part is retried alone, so one bad
//! request (a duplicate hash, an unknown client, an undecodable row) fails
//! only itself.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

use super::{
    CodeRecord, GrantOrigin, NewToken, StoreError, StoreErrorKind, TokenRecord, distinct_grant_ids,
    same_family,
};

/// Rows in one statement at most (eleven bound values each: well inside
/// SQLite's 32,766 and PostgreSQL's 65,535 parameters), a claim counting as
/// one. A request with more rows than this is written alone.
const MAX_BATCH_ROWS: usize = 256;

/// Requests that may wait for the writer before `insert` waits for room.
const QUEUE_DEPTH: usize = 1024;

/// One request's part of a batch.
#[derive(Debug)]
pub(super) struct Job {
    pub tokens: Vec<NewToken>,
    pub origin: GrantOrigin,
    /// A single-use `UPDATE` to run first; `tokens` are inserted only if it
    /// matched.
    pub claim: Option<Claim>,
}

impl Job {
    /// What the job adds to a batch: its rows, and one for a claim.
    fn weight(&self) -> usize {
        self.tokens.len() + usize::from(self.claim.is_some())
    }
}

/// The single-use claims.
#[derive(Debug)]
pub(super) enum Claim {
    /// Mark a refresh token rotated.
    Rotate(Presented),
    /// Mark an authorization code redeemed.
    Redeem(Presented),
}

/// A refresh token or code a client presented.
#[derive(Debug)]
pub(super) struct Presented {
    pub hash: [u8; 32],
    pub client_id: String,
    pub now: i64,
}

/// What became of one [`Job`] in a committed batch.
#[derive(Debug)]
pub(super) enum Written {
    Inserted,
    /// The rotated refresh token as it was stored.
    Rotated(Box<TokenRecord>),
    /// The redeemed code as it was stored.
    Redeemed(Box<CodeRecord>),
    /// The claim's `UPDATE` matched nothing; nothing of the job was written.
    Missed,
}

/// The statements a backend runs for a batch; [`write()`] puts them together.
pub(super) trait TokenWriter: Send + Sync + 'static {
    /// A write transaction.
    type Tx: Send;

    /// Inserts all rows in one statement, outside any transaction: a batch
    /// of new grants only, where one statement is atomic by itself.
    fn insert_alone(
        &self,
        rows: &[&NewToken],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Begins a write transaction; `continued` are the families its rows
    /// continue, sorted and each once (PostgreSQL locks them, in that
    /// order, against a concurrent revocation).
    fn begin(
        &self,
        continued: &[&str],
    ) -> impl Future<Output = Result<Self::Tx, StoreError>> + Send;

    /// Marks a refresh token rotated: the token as it was, if this did.
    /// `family` is the grant its new tokens continue, when there are any:
    /// the token must be of it, so a backend that locks families can lock
    /// this one without reading the token first.
    fn rotate(
        &self,
        tx: &mut Self::Tx,
        refresh_token: &Presented,
        family: Option<&str>,
    ) -> impl Future<Output = Result<Option<TokenRecord>, StoreError>> + Send;

    /// Marks a code redeemed: the code as it was, if this did.
    fn redeem(
        &self,
        tx: &mut Self::Tx,
        code: &Presented,
    ) -> impl Future<Output = Result<Option<CodeRecord>, StoreError>> + Send;

    /// Inserts all rows in one statement.
    fn insert(
        &self,
        tx: &mut Self::Tx,
        rows: &[&NewToken],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Revokes the tokens of those of `grant_ids` whose code was replayed
    /// between its redemption and now: they are born revoked.
    fn revoke_if_replayed(
        &self,
        tx: &mut Self::Tx,
        grant_ids: &[&str],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn commit(&self, tx: Self::Tx) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Writes a batch atomically: every job's claim, then the rows of the jobs
/// that may write, then the replay check of the continued families. One
/// outcome per job, in order.
async fn write<W: TokenWriter>(writer: &W, jobs: &[Job]) -> Result<Vec<Written>, StoreError> {
    if jobs
        .iter()
        .all(|j| j.claim.is_none() && j.origin == GrantOrigin::New)
    {
        let rows: Vec<&NewToken> = jobs.iter().flat_map(|j| &j.tokens).collect();
        writer.insert_alone(&rows).await?;
        return Ok(jobs.iter().map(|_| Written::Inserted).collect());
    }
    let continued = distinct_grant_ids(
        jobs.iter()
            .filter(|j| j.origin == GrantOrigin::Existing)
            .flat_map(|j| &j.tokens),
    );
    let mut tx = writer.begin(&continued).await?;
    let mut written = Vec::with_capacity(jobs.len());
    let mut rows: Vec<&NewToken> = Vec::new();
    for job in jobs {
        let outcome = match &job.claim {
            None => Written::Inserted,
            Some(Claim::Rotate(refresh_token)) => {
                let family = job.tokens.first().map(|t| t.grant_id.as_str());
                match writer.rotate(&mut tx, refresh_token, family).await? {
                    Some(old) => {
                        same_family(&old.grant_id, &job.tokens)?;
                        Written::Rotated(Box::new(old))
                    }
                    None => Written::Missed,
                }
            }
            Some(Claim::Redeem(code)) => match writer.redeem(&mut tx, code).await? {
                Some(code) => Written::Redeemed(Box::new(code)),
                None => Written::Missed,
            },
        };
        if !matches!(outcome, Written::Missed) {
            rows.extend(&job.tokens);
        }
        written.push(outcome);
    }
    if !rows.is_empty() {
        writer.insert(&mut tx, &rows).await?;
    }
    if !continued.is_empty() {
        writer.revoke_if_replayed(&mut tx, &continued).await?;
    }
    writer.commit(tx).await?;
    Ok(written)
}

/// The handle requests submit to; cloning shares the writer task.
#[derive(Clone, Debug)]
pub(super) struct GroupCommit {
    queue: mpsc::Sender<Pending>,
}

#[derive(Debug)]
struct Pending {
    job: Job,
    committed: oneshot::Sender<Result<Written, StoreError>>,
}

impl GroupCommit {
    /// Starts the writer task on the current tokio runtime. It ends when the
    /// last handle is dropped, after writing what is queued.
    pub(super) fn spawn(writer: impl TokenWriter) -> GroupCommit {
        let (queue, requests) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(write_batches(writer, requests));
        GroupCommit { queue }
    }

    /// Writes `tokens` in the next batch; returns once that batch committed.
    pub(super) async fn insert(
        &self,
        tokens: &[NewToken],
        origin: GrantOrigin,
    ) -> Result<(), StoreError> {
        let job = Job {
            tokens: tokens.to_vec(),
            origin,
            claim: None,
        };
        self.submit(job).await.map(|_| ())
    }

    /// Marks the refresh token rotated and inserts `new` in the next batch;
    /// `None` when the rotation's `UPDATE` matched nothing (nothing written).
    pub(super) async fn rotate(
        &self,
        refresh_token: Presented,
        new: &[NewToken],
    ) -> Result<Option<Box<TokenRecord>>, StoreError> {
        let job = Job {
            tokens: new.to_vec(),
            origin: GrantOrigin::New,
            claim: Some(Claim::Rotate(refresh_token)),
        };
        match self.submit(job).await? {
            Written::Rotated(old) => Ok(Some(old)),
            _ => Ok(None),
        }
    }

    /// Marks the code redeemed in the next batch; `None` when the `UPDATE`
    /// matched nothing.
    pub(super) async fn redeem(
        &self,
        code: Presented,
    ) -> Result<Option<Box<CodeRecord>>, StoreError> {
        let job = Job {
            tokens: Vec::new(),
            origin: GrantOrigin::New,
            claim: Some(Claim::Redeem(code)),
        };
        match self.submit(job).await? {
            Written::Redeemed(code) => Ok(Some(code)),
            _ => Ok(None),
        }
    }

    async fn submit(&self, job: Job) -> Result<Written, StoreError> {
        let (committed, outcome) = oneshot::channel();
        if self.queue.send(Pending { job, committed }).await.is_err() {
            return Err(stopped());
        }
        outcome.await.unwrap_or_else(|_| Err(stopped()))
    }
}

fn stopped() -> StoreError {
    StoreError::new(
        StoreErrorKind::Unavailable,
        "the token writer has stopped (is the runtime shutting down?)",
    )
}

async fn write_batches(writer: impl TokenWriter, mut requests: mpsc::Receiver<Pending>) {
    let mut carried: Option<Pending> = None;
    loop {
        let first = match carried.take() {
            Some(pending) => pending,
            None => match requests.recv().await {
                Some(pending) => pending,
                None => return,
            },
        };
        let mut count = first.job.weight();
        let mut batch = vec![first];
        while count < MAX_BATCH_ROWS {
            match requests.try_recv() {
                Ok(next) if count + next.job.weight() > MAX_BATCH_ROWS => {
                    carried = Some(next);
                    break;
                }
                Ok(next) => {
                    count += next.job.weight();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        let (jobs, replies): (Vec<Job>, Vec<_>) =
            batch.into_iter().map(|p| (p.job, p.committed)).unzip();
        match write(&writer, &jobs).await {
            Ok(written) => {
                for (reply, written) in replies.into_iter().zip(written) {
                    // A request that gave up waiting (its client left) is no error.
                    let _ = reply.send(Ok(written));
                }
            }
            Err(error) if jobs.len() == 1 => {
                let _ = replies
                    .into_iter()
                    .next()
                    .map(|reply| reply.send(Err(error)));
            }
            Err(_) => {
                for (job, reply) in jobs.iter().zip(replies) {
                    let alone = write(&writer, std::slice::from_ref(job))
                        .await
                        .map(|mut written| written.pop().unwrap_or(Written::Missed));
                    let _ = reply.send(alone);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::store::TokenKind;

    /// Records each statement's rows; fails any statement holding a row
    /// whose client is "bad", as a foreign key would.
    #[derive(Clone)]
    struct Recorder {
        statements: Arc<Mutex<Vec<Vec<String>>>>,
        origins: Arc<Mutex<Vec<GrantOrigin>>>,
        started: Arc<tokio::sync::Notify>,
        gate: Arc<tokio::sync::Semaphore>,
    }

    impl Default for Recorder {
        fn default() -> Recorder {
            Recorder {
                statements: Arc::default(),
                origins: Arc::default(),
                started: Arc::default(),
                gate: Arc::new(tokio::sync::Semaphore::new(0)),
            }
        }
    }

    impl Recorder {
        /// Holds each batch until the test opens the gate.
        async fn hold(&self) {
            self.started.notify_one();
            let _permit = self.gate.acquire().await.expect("open gate");
        }

        fn record(&self, rows: &[&NewToken], origin: GrantOrigin) -> Result<(), StoreError> {
            let clients = rows.iter().map(|t| t.client_id.clone()).collect();
            self.statements.lock().unwrap().push(clients);
            self.origins.lock().unwrap().push(origin);
            if rows.iter().any(|t| t.client_id == "bad") {
                return Err(StoreError::new(StoreErrorKind::Other, "unknown client"));
            }
            Ok(())
        }
    }

    impl TokenWriter for Recorder {
        type Tx = ();

        async fn insert_alone(&self, rows: &[&NewToken]) -> Result<(), StoreError> {
            self.hold().await;
            self.record(rows, GrantOrigin::New)
        }

        async fn begin(&self, _continued: &[&str]) -> Result<(), StoreError> {
            self.hold().await;
            Ok(())
        }

        async fn rotate(
            &self,
            _: &mut (),
            _: &Presented,
            _: Option<&str>,
        ) -> Result<Option<TokenRecord>, StoreError> {
            Ok(None)
        }

        async fn redeem(
            &self,
            _: &mut (),
            _: &Presented,
        ) -> Result<Option<CodeRecord>, StoreError> {
            Ok(None)
        }

        async fn insert(&self, _: &mut (), rows: &[&NewToken]) -> Result<(), StoreError> {
            self.record(rows, GrantOrigin::Existing)
        }

        async fn revoke_if_replayed(&self, _: &mut (), _: &[&str]) -> Result<(), StoreError> {
            Ok(())
        }

        async fn commit(&self, _: ()) -> Result<(), StoreError> {
            Ok(())
        }
    }

    /// Client "c" continues a grant; the others start one.
    fn origin(client: &str) -> GrantOrigin {
        if client == "c" {
            GrantOrigin::Existing
        } else {
            GrantOrigin::New
        }
    }

    fn token(client: &str) -> NewToken {
        NewToken {
            token_hash: [0; 32],
            kind: TokenKind::Access,
            client_id: client.into(),
            subject: None,
            scope: vec![],
            grant_id: client.into(),
            issued_at: 0,
            expires_at: 1,
            grant_expires_at: None,
            audience: vec![],
            actor: None,
            dpop_jkt: None,
        }
    }

    /// Holds a first request ("a") at the gate while one request for each of
    /// `clients` queues behind it, then opens the gate; the outcomes of the
    /// queued ones, in order.
    async fn queue_behind_a_held_write(
        recorder: &Recorder,
        clients: [&'static str; 3],
    ) -> Vec<bool> {
        let group = GroupCommit::spawn(recorder.clone());
        let first = tokio::spawn({
            let group = group.clone();
            async move { group.insert(&[token("a")], GrantOrigin::New).await }
        });
        recorder.started.notified().await;
        let mut waiting = Vec::new();
        for client in clients {
            let group = group.clone();
            waiting.push(tokio::spawn(async move {
                group.insert(&[token(client)], origin(client)).await
            }));
        }
        while group.queue.capacity() > QUEUE_DEPTH - clients.len() {
            tokio::task::yield_now().await;
        }
        recorder.gate.add_permits(100);
        first.await.unwrap().expect("committed");
        let mut outcomes = Vec::new();
        for handle in waiting {
            outcomes.push(handle.await.unwrap().is_ok());
        }
        outcomes
    }

    #[tokio::test]
    async fn requests_queued_during_a_write_share_the_next_statement() {
        let recorder = Recorder::default();
        let outcomes = queue_behind_a_held_write(&recorder, ["b", "c", "d"]).await;
        assert_eq!(outcomes, vec![true, true, true]);
        let statements = recorder.statements.lock().unwrap().clone();
        assert_eq!(statements, vec![vec!["a"], vec!["b", "c", "d"]]);
        // "c" continues a grant: its batch gets the checks of continued grants.
        let origins = recorder.origins.lock().unwrap().clone();
        assert_eq!(origins, vec![GrantOrigin::New, GrantOrigin::Existing]);
    }

    #[tokio::test]
    async fn a_failing_request_fails_alone_and_its_neighbours_commit() {
        let recorder = Recorder::default();
        let outcomes = queue_behind_a_held_write(&recorder, ["b", "bad", "d"]).await;
        assert_eq!(outcomes, vec![true, false, true]);
        let statements = recorder.statements.lock().unwrap().clone();
        assert_eq!(
            statements,
            vec![
                vec!["a"],
                vec!["b", "bad", "d"],
                vec!["b"],
                vec!["bad"],
                vec!["d"]
            ]
        );
        // Retried alone, each request has its own origin again.
        let origins = recorder.origins.lock().unwrap().clone();
        assert_eq!(origins[2..], [GrantOrigin::New; 3]);
    }

    #[tokio::test]
    async fn a_batch_never_exceeds_the_row_limit() {
        let recorder = Recorder::default();
        recorder.gate.add_permits(1000);
        let group = GroupCommit::spawn(recorder.clone());
        let many: Vec<NewToken> = (0..MAX_BATCH_ROWS - 1).map(|_| token("x")).collect();
        let two = [token("y"), token("y")];
        let (a, b) = tokio::join!(
            group.insert(&many, GrantOrigin::New),
            group.insert(&two, GrantOrigin::New)
        );
        a.expect("committed");
        b.expect("committed");
        let statements = recorder.statements.lock().unwrap().clone();
        assert!(statements.iter().all(|s| s.len() <= MAX_BATCH_ROWS));
        assert_eq!(
            statements.iter().map(Vec::len).sum::<usize>(),
            MAX_BATCH_ROWS + 1
        );
    }
}

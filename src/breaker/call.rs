//! The call wrappers: `call`, `call_with`, `call_or_else` and their async forms, all over
//! one permit (`try_acquire`) and one outcome report.

use super::*;

impl<C: Clock> CircuitBreaker<C> {
    /// Runs `f` if admitted; its result is classified by the configured
    /// [`Classification`](crate::Classification) (by default `Err` is a failure, `Ok` a
    /// success). For results that borrow (not `'static`), use [`call_with`](Self::call_with).
    #[inline(always)]
    pub fn call<T: 'static, E: 'static>(
        &self,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, CallError<E>> {
        let permit = self.try_acquire()?;
        let result = f();
        // Two reports, not one with the verdict chosen before it: without rules the outcome of
        // an `Ok` is a constant, and `complete` folds down to its success path.
        if self.classified {
            permit.record(self.classify_configured(&result));
        } else {
            permit.record(default_classify(&result));
        }
        result.map_err(CallError::Failed)
    }

    /// The outcome the configured [`Classification`](crate::Classification) gives `result`:
    /// what [`call`](Self::call), [`call_async`](Self::call_async) and
    /// [`Permit::record_result`](crate::Permit::record_result) record.
    #[inline(always)]
    pub fn classify<T: 'static, E: 'static>(&self, result: &Result<T, E>) -> Outcome {
        if self.classified {
            self.classify_configured(result)
        } else {
            default_classify(result)
        }
    }

    /// The rules' verdict, out of line: the call path of a breaker without rules carries
    /// only the flag test.
    #[cold]
    #[inline(never)]
    fn classify_configured<T: 'static, E: 'static>(&self, result: &Result<T, E>) -> Outcome {
        self.config.classification.classify(result)
    }

    /// Runs `f` if admitted and classifies its result with `classify`: which errors count,
    /// which are ignored, which `Ok` values are failures.
    ///
    /// ```
    /// use breakerbox::{CircuitBreaker, Outcome};
    /// let breaker = CircuitBreaker::builder().build().unwrap();
    /// // A 503 in an Ok body is a failure; a 404 error is ignored.
    /// let classify = |r: &Result<u16, u16>| match r {
    ///     Ok(503) => Outcome::Failure,
    ///     Ok(_) => Outcome::Success,
    ///     Err(404) => Outcome::Ignore,
    ///     Err(_) => Outcome::Failure,
    /// };
    /// let status = breaker.call_with(classify, || Ok::<u16, u16>(503)).unwrap();
    /// assert_eq!(status, 503);
    /// assert_eq!(breaker.metrics().failures, 1);
    /// ```
    #[inline(always)]
    pub fn call_with<T, E>(
        &self,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, CallError<E>> {
        let permit = self.try_acquire()?;
        let result = f();
        permit.record(classify(&result));
        result.map_err(CallError::Failed)
    }

    /// Runs `f` if admitted, and `fallback` on any error (rejection or failure).
    ///
    /// ```
    /// let breaker = breakerbox::CircuitBreaker::builder().build().unwrap();
    /// breaker.force_open();
    /// let price = breaker.call_or_else(|| Ok::<u32, ()>(42), |_err| 40 /* cached */);
    /// assert_eq!(price, 40);
    /// ```
    pub fn call_or_else<T: 'static, E: 'static>(
        &self,
        f: impl FnOnce() -> Result<T, E>,
        fallback: impl FnOnce(CallError<E>) -> T,
    ) -> T {
        self.call(f).unwrap_or_else(fallback)
    }

    /// Awaits `fut` if admitted; its result is classified as in [`call`](Self::call). The permit lives inside the returned future: dropping the
    /// future mid-flight gives a half-open slot back. With the `tokio` feature and a
    /// configured [`call_timeout`](Config::call_timeout), a call that runs past it is
    /// dropped and counts as a failure.
    pub async fn call_async<T: 'static, E: 'static, F>(&self, fut: F) -> Result<T, CallError<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        self.call_async_with(|r| self.classify(r), fut).await
    }

    /// [`call_async`](Self::call_async) with a classifier, as in [`call_with`](Self::call_with).
    pub async fn call_async_with<T, E, F>(
        &self,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
        fut: F,
    ) -> Result<T, CallError<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        let permit = self.try_acquire()?;
        #[cfg(feature = "tokio")]
        let result = match self.config.call_timeout {
            Some(d) => match tokio::time::timeout(d, fut).await {
                Ok(r) => r,
                Err(_) => {
                    permit.failure();
                    return Err(CallError::Timeout(d));
                }
            },
            None => fut.await,
        };
        #[cfg(not(feature = "tokio"))]
        let result = fut.await;
        permit.record(classify(&result));
        result.map_err(CallError::Failed)
    }

    /// [`call_async`](Self::call_async) with a fallback for any error.
    pub async fn call_async_or_else<T: 'static, E: 'static, F>(
        &self,
        fut: F,
        fallback: impl FnOnce(CallError<E>) -> T,
    ) -> T
    where
        F: Future<Output = Result<T, E>>,
    {
        self.call_async(fut).await.unwrap_or_else(fallback)
    }
}

/// `Ok` is a success, `Err` a failure.
#[inline]
pub(super) fn default_classify<T, E>(r: &Result<T, E>) -> Outcome {
    if r.is_ok() {
        Outcome::Success
    } else {
        Outcome::Failure
    }
}

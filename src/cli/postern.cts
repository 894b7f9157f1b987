#!/usr/bin/env node
/*
 * The `postern` executable. libuv sizes its thread pool once, at first use, and an ES module
 * entry is itself read through that pool, so only a CommonJS entry can still choose the size.
 * The spool's fsyncs run there: with 20 sessions committing at once, 4 threads (the default)
 * serialise them, 16 let the file system batch them into shared journal commits. An operator's
 * own UV_THREADPOOL_SIZE wins.
 */
process.env.UV_THREADPOOL_SIZE ??= '16';
void import('./index.js');

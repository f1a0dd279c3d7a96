/*
 * The hooks of confinement (src/confine.rs), as C trampolines (issue 29).
 *
 * Why C: a hook wraps PostgreSQL code that raises errors (the executor runs
 * the client's statement; another library's hook may raise). Called from
 * Rust, every pg_sys function goes through pgrx's FFI guard, which turns the
 * ERROR into a Rust panic carrying a reduced copy of the report and raises
 * that copy again at the hook's boundary: a custom SQLSTATE became XX000,
 * schema/table/column/constraint/datatype names, context and internal query
 * were lost. A hook called through a raw pointer instead (another library's C
 * hook) longjmps across the Rust frames, skipping their destructors.
 *
 * Here the PostgreSQL code runs from C, inside PG_TRY/PG_FINALLY: the error is
 * never copied, PG_END_TRY re-throws the original ErrorData untouched. The
 * Rust parts (fluxbase_confine_*) run before or after, never with PostgreSQL
 * code below them that could raise an application's error; the only error
 * they raise on purpose is confinement's own refusal (42501, with its message
 * and hint, src/confine.rs), raised at the Rust function's own boundary.
 */
#include "postgres.h"

#include "executor/executor.h"
#include "fmgr.h"

/* src/confine.rs */
extern bool fluxbase_confine_statement_begin(QueryDesc *queryDesc);
extern void fluxbase_confine_statement_end(bool previous);
extern bool fluxbase_confine_needs_fmgr(Oid fn_oid);
extern void fluxbase_confine_fmgr(FmgrHookEventType event, FmgrInfo *flinfo, Datum *private);

static ExecutorRun_hook_type prev_executor_run = NULL;
static needs_fmgr_hook_type prev_needs_fmgr_hook = NULL;
static fmgr_hook_type prev_fmgr_hook = NULL;

/*
 * The client's statement (and every nested one) runs through here: the Rust
 * side records whether it is a plain API call for the time it runs.
 */
#if PG_VERSION_NUM >= 180000
static void
fluxbase_executor_run(QueryDesc *queryDesc, ScanDirection direction, uint64 count)
#else
static void
fluxbase_executor_run(QueryDesc *queryDesc, ScanDirection direction, uint64 count, bool execute_once)
#endif
{
	bool		previous = fluxbase_confine_statement_begin(queryDesc);

	PG_TRY();
	{
#if PG_VERSION_NUM >= 180000
		if (prev_executor_run)
			prev_executor_run(queryDesc, direction, count);
		else
			standard_ExecutorRun(queryDesc, direction, count);
#else
		if (prev_executor_run)
			prev_executor_run(queryDesc, direction, count, execute_once);
		else
			standard_ExecutorRun(queryDesc, direction, count, execute_once);
#endif
	}
	PG_FINALLY();
	{
		fluxbase_confine_statement_end(previous);
	}
	PG_END_TRY();
}

static bool
fluxbase_needs_fmgr_hook(Oid fn_oid)
{
	if (prev_needs_fmgr_hook && prev_needs_fmgr_hook(fn_oid))
		return true;
	return fluxbase_confine_needs_fmgr(fn_oid);
}

static void
fluxbase_fmgr_hook(FmgrHookEventType event, FmgrInfo *flinfo, Datum *private)
{
	if (prev_fmgr_hook)
		prev_fmgr_hook(event, flinfo, private);
	fluxbase_confine_fmgr(event, flinfo, private);
}

/* Called once, from _PG_init (confine::init). */
void
fluxbase_confine_install_hooks(void)
{
	prev_executor_run = ExecutorRun_hook;
	ExecutorRun_hook = fluxbase_executor_run;
	prev_needs_fmgr_hook = needs_fmgr_hook;
	needs_fmgr_hook = fluxbase_needs_fmgr_hook;
	prev_fmgr_hook = fmgr_hook;
	fmgr_hook = fluxbase_fmgr_hook;
}

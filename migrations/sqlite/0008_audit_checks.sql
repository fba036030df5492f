-- Control Tower 0008: the audit trail's two CHECK constraints written as comparisons, so that
-- SQLite checks an audit row without building a temporary table for it.
--
-- Why: the legacy layout checks `actor_kind IN ('human', 'agent', 'system')` and `action IN (…)`
-- with six values. SQLite evaluates an IN list of more than two constants through a temporary
-- B-tree of its values, and in a CHECK constraint it builds that B-tree again for every row: it
-- clears a 4 KB page and inserts the values, twice per audit row. An enqueue writes seven audit
-- rows and a task about sixteen in its life. The same checks written as `=` comparisons joined by
-- OR accept and refuse exactly the same values and build nothing: `tower api` runs 9 % fewer
-- instructions per enqueue (docs/benchmarks.md, forty-fifth session).
--
-- How: only the table's text in sqlite_master changes, by SQLite's documented procedure for
-- changing a table's constraints without rebuilding it (https://www.sqlite.org/lang_altertable.html,
-- "Making Other Kinds Of Table Schema Changes"). Rows, indexes (an operator's own included) and
-- what the legacy service sees of the table stay as they are, and every row already satisfies
-- the new checks, which are the old ones. `replace` changes only the legacy text of each check,
-- which a database the legacy service created has too; a table whose text differs keeps its
-- checks, exactly as valid and only slower. Instant on any size of audit trail.
PRAGMA writable_schema = ON;
UPDATE sqlite_master
SET sql = replace(replace(sql,
    'CHECK (actor_kind IN (''human'', ''agent'', ''system''))',
    'CHECK (actor_kind = ''human'' OR actor_kind = ''agent'' OR actor_kind = ''system'')'),
    'CHECK (action IN (''created'', ''updated'', ''status_changed'', ''deleted'', ''linked'', ''unlinked''))',
    'CHECK (action = ''created'' OR action = ''updated'' OR action = ''status_changed'' OR action = ''deleted'' OR action = ''linked'' OR action = ''unlinked'')')
WHERE type = 'table' AND name = 'audit_log';
-- Schema writing off again, and this connection reads the new text at once.
PRAGMA writable_schema = RESET;
-- Every other connection reads it at its next statement: a schema change moves the schema's
-- version number, which an edit of sqlite_master alone does not (the procedure's step 6).
CREATE TABLE tower_schema_changed (changed INTEGER);
DROP TABLE tower_schema_changed;

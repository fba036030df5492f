-- Control Tower 0009: the CWOM tables' foreign keys, and the tasks table's, are checked when a
-- transaction commits (DEFERRABLE INITIALLY DEFERRED) rather than after each statement.
--
-- Why: SQLite keeps a statement journal (a copy of every page a statement changes, in memory)
-- for each statement that writes several rows and may fail on a constraint, so that it can undo
-- that statement alone. Control Tower's transactions are all or nothing, and its driver runs
-- INSERT and UPDATE as OR ROLLBACK, which needs no such journal for UNIQUE, NOT NULL and CHECK
-- constraints; an immediate foreign key still asks for one. An intake batch's multi-row inserts
-- into tasks, Issues, context packets and their links, and a worker's into Runs, Artifacts and
-- their links, all have foreign keys: their journal was about 7 % of the intake's writer thread
-- under `wrk` (docs/benchmarks.md, forty-ninth session). Checked at commit, a reference to a
-- missing row fails the same transaction with the same error, once the statements that could
-- have supplied it have run; none of Control Tower's transactions needs a check sooner.
--
-- How: as 0008, only the tables' text in sqlite_master changes, by SQLite's procedure for
-- changes that leave the stored rows and indexes as they are
-- (https://www.sqlite.org/lang_altertable.html, "Making Other Kinds Of Table Schema Changes");
-- instant on any size of database. `replace` matches the legacy layout's text of each clause,
-- which a database the legacy service created has too; a clause written otherwise stays
-- immediate, as valid and only slower. The ON DELETE action of tasks.cwom_issue_id is unchanged
-- (SET NULL when an Issue is deleted); only its check moves to the commit.
PRAGMA writable_schema = ON;
UPDATE sqlite_master
SET sql = replace(sql,
    'REFERENCES cwom_issues (id) ON DELETE SET NULL',
    'REFERENCES cwom_issues (id) ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED')
WHERE type = 'table' AND name = 'tasks';
UPDATE sqlite_master
SET sql = replace(replace(replace(replace(replace(replace(replace(sql,
    'REFERENCES cwom_repos (id)', 'REFERENCES cwom_repos (id) DEFERRABLE INITIALLY DEFERRED'),
    'REFERENCES cwom_issues (id)', 'REFERENCES cwom_issues (id) DEFERRABLE INITIALLY DEFERRED'),
    'REFERENCES cwom_context_packets (id)', 'REFERENCES cwom_context_packets (id) DEFERRABLE INITIALLY DEFERRED'),
    'REFERENCES cwom_constraint_snapshots (id)', 'REFERENCES cwom_constraint_snapshots (id) DEFERRABLE INITIALLY DEFERRED'),
    'REFERENCES cwom_doctrine_refs (id)', 'REFERENCES cwom_doctrine_refs (id) DEFERRABLE INITIALLY DEFERRED'),
    'REFERENCES cwom_runs (id)', 'REFERENCES cwom_runs (id) DEFERRABLE INITIALLY DEFERRED'),
    'REFERENCES cwom_evidence_packs (id)', 'REFERENCES cwom_evidence_packs (id) DEFERRABLE INITIALLY DEFERRED')
WHERE type = 'table' AND name LIKE 'cwom\_%' ESCAPE '\';
-- Schema writing off again, and this connection reads the new text at once.
PRAGMA writable_schema = RESET;
-- Every other connection reads it at its next statement (see 0008).
CREATE TABLE tower_schema_changed (changed INTEGER);
DROP TABLE tower_schema_changed;

// The enumerations of CWOM v0.1, with exactly the values of the spec (reference §5.1).

public enum ObjectKind: String, CWOMEnum {
    case repo = "Repo", issue = "Issue", contextPacket = "ContextPacket", run = "Run", artifact = "Artifact"
    case constraintSnapshot = "ConstraintSnapshot", doctrineRef = "DoctrineRef", evidencePack = "EvidencePack"
    case reviewDecision = "ReviewDecision"
}

/// The status of an Issue or a Run.
public enum Status: String, CWOMEnum {
    case planned, ready, running, blocked, done, failed, canceled
    case underReview = "under_review"
}

public enum IssueType: String, CWOMEnum {
    case feature, bug, chore, research, ops, doc, incident
}

public enum Priority: String, CWOMEnum {
    case p0 = "P0", p1 = "P1", p2 = "P2", p3 = "P3", p4 = "P4"
}

public enum RunMode: String, CWOMEnum {
    case human, agent, hybrid, system
}

public enum ArtifactType: String, CWOMEnum {
    case codePatch = "code_patch", commit, pr, build
    case containerImage = "container_image"
    case doc, report, dataset, log, trace, binary, link
}

/// `VerificationStatus`, also used as `CheckStatus`.
public enum VerificationStatus: String, CWOMEnum {
    case unverified, passed, failed
}

public typealias CheckStatus = VerificationStatus

public enum DoctrineType: String, CWOMEnum {
    case principle, policy, procedure, heuristic, pattern
}

public enum DoctrinePriority: String, CWOMEnum {
    case must, should, may
}

public enum Visibility: String, CWOMEnum {
    case `public`, `private`, `internal`
}

public enum ActorKind: String, CWOMEnum {
    case human, agent, system
}

public enum ConstraintScope: String, CWOMEnum {
    case personal, repo, org, system, run
}

public enum Connectivity: String, CWOMEnum {
    case offline, limited, ok
}

public enum RiskTolerance: String, CWOMEnum {
    case low, medium, high
}

public enum FailureCategory: String, CWOMEnum {
    case policy, build, test, runtime, dependency, unknown
}

public enum Verdict: String, CWOMEnum {
    case pass, fail, partial, pending
}

public enum CriterionStatus: String, CWOMEnum {
    case satisfied
    case notSatisfied = "not_satisfied"
    case unverified, skipped
}

public enum ReviewDecisionStatus: String, CWOMEnum {
    case approved, rejected
    case needsChanges = "needs_changes"
}

/// The CWOM spec version this module implements.
public enum CWOMVersion {
    public static let current = "0.1"
}

package results

// Every value of each enum type, in a stable order. Readers check a results
// file against these (a misspelt phase would otherwise make a verdict "not
// measured" silently), and the JSON Schema lists them.

// Statuses lists every Status.
func Statuses() []Status { return []Status{Passed, Failed, Errored} }

// Strategies lists every Strategy.
func Strategies() []Strategy { return []Strategy{TwoPhase, Atomic, StrategyNotObserved} }

// Operations lists every Operation.
func Operations() []Operation { return []Operation{RestoreFromFile, Manual} }

// Phases lists every Phase, in the order they usually happen.
func Phases() []Phase {
	return []Phase{
		PhaseOperationStarted, PhaseCallReceived, PhaseValidated, PhaseReinitCommitted, PhaseWindowAction,
		PhaseRestoreCommitted, PhaseCommittedTogether, PhaseRestoreNotObserved,
		PhaseResponseSent, PhaseOperationFinished, PhaseWatcher,
	}
}

// ProbeKinds lists every ProbeKind.
func ProbeKinds() []ProbeKind { return []ProbeKind{ProbeLogin, ProbeProfile, ProbeRefresh} }

// PasswordKinds lists every PasswordKind.
func PasswordKinds() []PasswordKind { return []PasswordKind{PasswordOriginal, PasswordDefault} }

// PKReuseKinds lists every PKReuseKind.
func PKReuseKinds() []PKReuseKind {
	return []PKReuseKind{IDRecycled, TokenAsOther, RowOverwritten, RowDeleted}
}

// WindowStates lists every WindowState.
func WindowStates() []WindowState {
	return []WindowState{WindowObserved, WindowNone, WindowNotObserved}
}

// OperationOutcomes lists every OperationOutcome.
func OperationOutcomes() []OperationOutcome {
	return []OperationOutcome{OperationCompleted, OperationRefused, OperationNoResponse, OperationFailedAfterReinit, OperationCommitsNotObserved}
}

// ServerSources lists every ServerSource.
func ServerSources() []ServerSource {
	return []ServerSource{SourceProbe, SourceOperation, SourceWindowAction, SourceAfter}
}

// TokenKinds lists every TokenKind.
func TokenKinds() []TokenKind { return []TokenKind{TokenJWT, TokenSession, TokenDRF} }

// UserPresences lists every UserPresence.
func UserPresences() []UserPresence { return []UserPresence{UserPresent, UserDeleted} }

// AccountsSources lists every AccountsSource.
func AccountsSources() []AccountsSource {
	return []AccountsSource{AccountsFixture, AccountsScenario, AccountsCreated}
}

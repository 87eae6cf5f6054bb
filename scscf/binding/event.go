package binding

import "github.com/imscore/imscore/pkg/userdata"

// EventKind says what happened to a registration.
type EventKind string

// Event kinds of Event.
const (
	EventRegistered     EventKind = "registered"      // first binding of the set
	EventRefreshed      EventKind = "refreshed"       // re-registration, bindings added/refreshed
	EventDeregistered   EventKind = "deregistered"    // binding(s) removed by the UE (Expires 0)
	EventExpired        EventKind = "expired"         // binding(s) reached their expiry
	EventTerminated     EventKind = "terminated"      // HSS RTR (administrative)
	EventProfileUpdated EventKind = "profile-updated" // HSS PPR
)

// Event is one change of a registration, as the registrar reports it
// after the change is stored (the S-CSCF's Config.OnRegistrationChange
// and registration listeners: the reg-event notifier, third-party
// registration). After is the registration after the change (no Contacts
// when the set is no longer registered); Changed holds the bindings
// added, refreshed or removed by this change.
type Event struct {
	Kind    EventKind
	After   Registration
	Changed []Contact
	// Reason is the Reason-Info of an RTR, or "" otherwise.
	Reason string
	// Reregister, for EventTerminated from an RTR, tells whether the HSS
	// expects the UE to register again (Deregistration-Reason Reason-Code
	// NEW_SERVER_ASSIGNED, SERVER_CHANGE or REMOVE_S-CSCF: reg-event
	// contact event "deactivated") or not (PERMANENT_TERMINATION:
	// "rejected"); nil when the RTR gave no Reason-Code (TS 29.228
	// §6.1.3, TS 24.229 §5.4.1.5).
	Reregister *bool
	// Before, for EventProfileUpdated, is the registration as it was
	// before the new profile (its IMPUs and barring); nil otherwise.
	Before *Registration

	// Profile is the registration's user profile (the parsed User-Data,
	// read-only, shared with the registrar); nil when it has none.
	// After.UserData carries the XML only when it has just changed.
	Profile *userdata.IMSSubscription
}

package aka

// SQN layout per TS 33.102 Annex C: SQN = SEQ ‖ IND, here with a 43-bit
// SEQ and a 5-bit IND (the IND length commonly used by USIMs and HSSs),
// 48 bits in all.
//
// IND policy of this package: the HSS always uses IND = 0 and advances SEQ
// by one per vector, i.e. SQN steps by 32 (1 << INDBits). A USIM that
// implements Annex C then checks each vector against array element 0 only,
// which is the strict "SEQ must increase" behaviour; it costs nothing
// because the HSS hands vectors to one S-CSCF at a time.
const (
	INDBits = 5              // bits of IND at the low end of SQN
	SEQBits = 48 - INDBits   // 43 bits of SEQ
	SQNMax  = 1<<48 - 1      // largest 48-bit SQN
	seqMask = 1<<SEQBits - 1 // mask of SEQ after the shift
	indMask = 1<<INDBits - 1 // mask of IND
)

// SEQ returns the 43-bit SEQ part of a 48-bit SQN (TS 33.102 Annex C).
func SEQ(sqn uint64) uint64 { return (sqn >> INDBits) & seqMask }

// IND returns the 5-bit IND part of a 48-bit SQN (TS 33.102 Annex C).
func IND(sqn uint64) uint64 { return sqn & indMask }

// NextSQN returns the SQN of the next vector after current: SEQ + 1 with
// IND = 0 (the policy above; any IND bits in current are dropped). Bits of
// current above 48 are ignored. Should SEQ ever reach 2^43 − 1 it wraps to
// 0; at one vector per second that is 278 000 years away, and the UE would
// then demand a resynchronisation.
func NextSQN(current uint64) uint64 {
	return ((SEQ(current) + 1) & seqMask) << INDBits
}

// SQNFromResync returns the SQN the HSS should use for the first vector
// after a successful resynchronisation with SQN_MS (TS 33.102 §6.3.5: the
// HE sets SQN_HE to SQN_MS and sends fresh vectors): the next SEQ after
// SQN_MS's, with IND = 0, i.e. NextSQN(sqnMS). Store this value as the SQN
// used; the vector after it takes NextSQN of it.
func SQNFromResync(sqnMS uint64) uint64 { return NextSQN(sqnMS) }

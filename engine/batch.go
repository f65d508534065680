package engine

// WriteBatch collects puts and deletes across CFs for one atomic Engine.Write.
// Operations apply in order, so a later operation on the same key wins. Put
// and Delete copy their arguments; the batch may be reused after Reset once
// Write has returned. A WriteBatch is not safe for concurrent use.
type WriteBatch struct {
	// ops are the operations in insertion order.
	ops []batchOp
	// data holds each operation's stored key (CF prefix included) followed by
	// its value, back to back; ops index into it.
	data []byte
	// userBytes is the sum of len(key)+len(value) over ops, as given by the
	// caller (CF prefixes excluded).
	userBytes int
}

// batchOp locates one operation in WriteBatch.data: the stored key is
// data[keyStart:valueStart] and the value data[valueStart:valueEnd] (empty for
// a delete).
type batchOp struct {
	keyStart, valueStart, valueEnd int
	delete                         bool
}

// userKeyLen returns the length of op's key without its CF prefix.
func (op batchOp) userKeyLen() int { return op.valueStart - op.keyStart - 1 }

// NewWriteBatch returns an empty batch.
func NewWriteBatch() *WriteBatch { return &WriteBatch{} }

// Put sets key to value in cf.
func (wb *WriteBatch) Put(cf CF, key, value []byte) {
	wb.add(cf, key, value, false)
}

// Delete removes key from cf. Deleting an absent key is not an error.
func (wb *WriteBatch) Delete(cf CF, key []byte) {
	wb.add(cf, key, nil, true)
}

func (wb *WriteBatch) add(cf CF, key, value []byte, isDelete bool) {
	keyStart := len(wb.data)
	wb.data = append(wb.data, cf.prefix())
	wb.data = append(wb.data, key...)
	wb.appendOp(keyStart, value, isDelete)
}

// addStored appends an operation whose key already carries its CF prefix.
func (wb *WriteBatch) addStored(storedKey, value []byte, isDelete bool) {
	keyStart := len(wb.data)
	wb.data = append(wb.data, storedKey...)
	wb.appendOp(keyStart, value, isDelete)
}

// appendOp records an operation whose stored key is data[keyStart:] and
// whose value is appended to data.
func (wb *WriteBatch) appendOp(keyStart int, value []byte, isDelete bool) {
	valueStart := len(wb.data)
	wb.data = append(wb.data, value...)
	wb.ops = append(wb.ops, batchOp{
		keyStart:   keyStart,
		valueStart: valueStart,
		valueEnd:   len(wb.data),
		delete:     isDelete,
	})
	wb.userBytes += wb.ops[len(wb.ops)-1].userKeyLen() + len(value)
}

// Len returns the number of operations in the batch.
func (wb *WriteBatch) Len() int { return len(wb.ops) }

// Size returns the total length of the keys and values in the batch.
func (wb *WriteBatch) Size() int { return wb.userBytes }

// Reset empties the batch, keeping its buffers for reuse.
func (wb *WriteBatch) Reset() {
	wb.ops = wb.ops[:0]
	wb.data = wb.data[:0]
	wb.userBytes = 0
}

// storedKey returns op's key with its CF prefix; it aliases the batch.
func (wb *WriteBatch) storedKey(op batchOp) []byte {
	return wb.data[op.keyStart:op.valueStart:op.valueStart]
}

// value returns op's value; it aliases the batch.
func (wb *WriteBatch) value(op batchOp) []byte {
	return wb.data[op.valueStart:op.valueEnd:op.valueEnd]
}

// cost returns what the batch counts against Badger's transaction limits.
func (wb *WriteBatch) cost() txnCost {
	return txnCost{entries: len(wb.ops), bytes: len(wb.data) + len(wb.ops)*badgerEntryOverhead}
}

// opCost returns what op counts against Badger's transaction limits.
func (wb *WriteBatch) opCost(op batchOp) txnCost {
	return txnCost{entries: 1, bytes: op.valueEnd - op.keyStart + badgerEntryOverhead}
}

// longestKey returns the length of the longest user key in the batch.
func (wb *WriteBatch) longestKey() int {
	longest := 0
	for _, op := range wb.ops {
		longest = max(longest, op.userKeyLen())
	}
	return longest
}

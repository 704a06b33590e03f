package nacos

import (
	"encoding/binary"
	"encoding/json"
	"errors"

	"github.com/pushd/pushd/internal/hubwire"
	"github.com/pushd/pushd/pkg/hub"
)

// Flags of a request entry on a peer link.
const (
	entryDeliver       = 1 << iota // a deliver request (else a survey)
	entryAll                       // Target.All
	entryListening                 // Target.Listening
	entryStreams                   // the event carries stream positions
	entryInterest                  // key changes of the sender (interest.go), not a request
	entrySnapshotStart             // an interest entry that starts the sender's whole set
	entrySnapshotEnd               // an interest entry that ends it
)

var errMalformedEntry = errors.New("malformed peer link entry")

// linkRequest is one request entry of a peer link frame.
type linkRequest struct {
	id        uint64
	app       string
	timeoutMS int64
	target    hub.Target
	deliver   bool
	event     hub.Event   // deliver
	request   hub.Request // survey

	// An interest entry (isInterest): the sender's key changes for app.
	isInterest                 bool
	interest                   []keyChange
	snapshotStart, snapshotEnd bool
}

// appendRequest encodes r as a request entry.
func appendRequest(b []byte, r *linkRequest) []byte {
	if r.isInterest {
		flags := byte(entryInterest)
		if r.snapshotStart {
			flags |= entrySnapshotStart
		}
		if r.snapshotEnd {
			flags |= entrySnapshotEnd
		}
		b = append(b, flags)
		b = binary.AppendUvarint(b, r.id)
		b = hubwire.AppendString(b, r.app)
		return appendInterest(b, r.interest)
	}
	t := &r.target
	flags := byte(0)
	if r.deliver {
		flags |= entryDeliver
	}
	if t.All {
		flags |= entryAll
	}
	if t.Listening {
		flags |= entryListening
	}
	if r.deliver && len(r.event.Streams) > 0 {
		flags |= entryStreams
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, r.id)
	b = hubwire.AppendString(b, r.app)
	b = binary.AppendUvarint(b, uint64(max(r.timeoutMS, 0)))
	b = hubwire.AppendIDs(b, t)
	if r.deliver {
		return hubwire.AppendEvent(b, &r.event, flags&entryStreams != 0)
	}
	b = hubwire.AppendString(b, r.request.Op)
	return hubwire.AppendString(b, string(r.request.Args))
}

// readRequest decodes the next request entry of a frame.
func readRequest(rd *hubwire.Reader) (linkRequest, error) {
	var r linkRequest
	flags := rd.Byte()
	r.id = rd.Uvarint()
	r.app = rd.String()
	if flags&entryInterest != 0 {
		r.isInterest = true
		r.snapshotStart, r.snapshotEnd = flags&entrySnapshotStart != 0, flags&entrySnapshotEnd != 0
		r.interest = readInterest(rd, r.app)
		if rd.Bad {
			return r, errMalformedEntry
		}
		return r, nil
	}
	r.timeoutMS = int64(min(rd.Uvarint(), 1<<40))
	r.target.All, r.target.Listening = flags&entryAll != 0, flags&entryListening != 0
	rd.IDs(&r.target)
	r.deliver = flags&entryDeliver != 0
	if r.deliver {
		r.event = rd.Event(flags&entryStreams != 0)
	} else {
		r.request = hub.Request{Op: rd.String(), Target: r.target}
		if args := rd.String(); args != "" {
			r.request.Args = json.RawMessage(args)
		}
	}
	if rd.Bad {
		return r, errMalformedEntry
	}
	return r, nil
}

// appendLinkReply encodes the reply to request id: a count (deliver) or a
// survey's reply.
func appendLinkReply(b []byte, id uint64, rep *hub.Reply) []byte {
	b = binary.AppendUvarint(b, id)
	b = binary.AppendVarint(b, int64(rep.Count))
	b = hubwire.AppendString(b, string(rep.Data))
	return hubwire.AppendString(b, rep.Error)
}

// readLinkReply decodes the next reply entry of a frame.
func readLinkReply(rd *hubwire.Reader) (uint64, hub.Reply, error) {
	id := rd.Uvarint()
	rep := hub.Reply{Count: int(rd.Varint())}
	if data := rd.String(); data != "" {
		rep.Data = json.RawMessage(data)
	}
	rep.Error = rd.String()
	if rd.Bad {
		return 0, rep, errMalformedEntry
	}
	return id, rep, nil
}

package main

import (
	"fmt"
	"io"
)

// problems lists in words what went wrong: with history in Redis, any
// message missing; with Redis or no history, duplicates and order
// violations (with node-local memory history, a reconnect to another node
// gets an epoch gap, and what that node keeps is replayed from its oldest
// entry, which may repeat what the subscriber had); with any setting,
// misrouted or stray messages, failed sends and timeouts.
func (fr *FlapReport) problems() []string {
	var out []string
	for _, v := range fr.Variants {
		add := func(n int64, what string) {
			if n != 0 {
				out = append(out, fmt.Sprintf("flap %s: %d %s", v.History, n, what))
			}
		}
		if v.History == historyRedis {
			add(v.Expected-v.Unique, "messages missing")
		}
		if v.History != historyMemory {
			add(v.Duplicated, "duplicated")
			add(v.OrderViolations, "out of order")
		}
		add(v.Misrouted, "misrouted")
		add(v.Stray, "stray")
		add(v.SendErrors, "send errors")
		if v.TimedOut {
			out = append(out, fmt.Sprintf("flap %s: timed out", v.History))
		}
	}
	return out
}

// writeTable prints every variant's figures.
func (fr *FlapReport) writeTable(w io.Writer) {
	fmt.Fprintf(w, "flap: %d subscribers on %d nodes, each in one of %d channels and its user stream; up ~%.1fs, down ~%.1fs; %.0f channel and %.0f user sends/s\n",
		fr.Subscribers, fr.Nodes, fr.Channels, fr.UpSecs, fr.DownSecs, fr.ChannelRate, fr.UserRate)
	for _, v := range fr.Variants {
		fmt.Fprintf(w, "history %s:\n", v.History)
		fmt.Fprintf(w, "  sent %d to channels, %d to users in %.1fs (%d errors); %d drops, %d reconnects (resumed %d true, %d false; %d sse-gap), %d other ends, %d refused\n",
			v.ChannelSends, v.UserSends, v.PublishSecs, v.SendErrors, v.Drops, v.Reconnects, v.ResumedTrue, v.ResumedFalse, v.Gaps, v.OtherEnds, v.Refused)
		fmt.Fprintf(w, "  delivery %.3f%% (%d of %d); per subscriber min %.2f%% p1 %.2f%% p50 %.2f%% mean %.2f%%, %d of %d at 100%%\n",
			v.DeliveryPct, v.Unique, v.Expected, v.PerSubscriber.MinPct, v.PerSubscriber.P1Pct, v.PerSubscriber.P50Pct,
			v.PerSubscriber.MeanPct, v.PerSubscriber.Complete, fr.Subscribers)
		fmt.Fprintf(w, "  %d duplicated, %d out of order, %d misrouted, %d stray\n", v.Duplicated, v.OrderViolations, v.Misrouted, v.Stray)
		fmt.Fprintf(w, "  catch-up after reconnect (dial → all sent before it received): p50 %s p99 %s max %s over %d, %d interrupted; connect p50 %s p99 %s\n",
			us(v.CatchUp.P50Us), us(v.CatchUp.P99Us), us(v.CatchUp.MaxUs), v.CatchUp.Count, v.Interrupted, us(v.Connect.P50Us), us(v.Connect.P99Us))
		fmt.Fprint(w, "  cpu/send while publishing:")
		for _, pc := range v.Procs {
			fmt.Fprintf(w, " %s %.1fµs", pc.Name, pc.PerSendUs)
		}
		fmt.Fprintf(w, ", total %.1fµs\n", v.TotalCPUPerSendUs)
		if v.TimedOut {
			fmt.Fprintln(w, "  timed out waiting for the subscribers to catch up")
		}
		writeErrors(w, "  errors", v.Errors)
	}
}

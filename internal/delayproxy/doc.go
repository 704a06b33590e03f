// Package delayproxy is a TCP proxy that holds every byte for a fixed
// delay in each direction: a stand-in for netem's one-way latency between
// simulated hosts on a kernel without sch_netem, for load tools and tests.
// It adds latency only; it neither drops nor reorders.
package delayproxy

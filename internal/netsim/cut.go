package netsim

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strings"
)

// Cut drops every packet between hosts a and b, both ways, silently, until
// Mend; both still reach every other host. It skips the test when nft is
// missing or the kernel refuses bridge filtering.
func (n *Network) Cut(a, b *Host) {
	n.tb.Helper()
	n.setCut(a, b, true)
}

// Mend undoes Cut(a, b).
func (n *Network) Mend(a, b *Host) {
	n.tb.Helper()
	n.setCut(a, b, false)
}

// setCut records the pair and rewrites the switch's drop rules in one nft
// transaction.
func (n *Network) setCut(a, b *Host, cut bool) {
	n.tb.Helper()
	pair := [2]netip.Addr{a.IP, b.IP}
	if b.IP.Less(a.IP) {
		pair = [2]netip.Addr{b.IP, a.IP}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if cut {
		n.cuts[pair] = true
	} else {
		delete(n.cuts, pair)
	}
	var script strings.Builder
	if !n.nft {
		if _, err := exec.LookPath("nft"); err != nil {
			if os.Getenv("CI") != "" {
				n.tb.Fatalf("netsim: cutting two hosts apart needs nft (nftables), which is not installed, and CI is set: %v", err)
			}
			n.tb.Skipf("netsim: cutting two hosts apart needs nft, which is not installed (CI=1 makes this a failure): %v", err)
		}
		script.WriteString("table bridge netsim {\n chain cut {\n  type filter hook forward priority 0;\n }\n}\n")
	}
	script.WriteString("flush chain bridge netsim cut\n")
	var rules []string
	for p := range n.cuts {
		rules = append(rules, fmt.Sprintf("add rule bridge netsim cut ip saddr %s ip daddr %s drop\n", p[0], p[1]),
			fmt.Sprintf("add rule bridge netsim cut ip saddr %s ip daddr %s drop\n", p[1], p[0]))
	}
	sort.Strings(rules)
	script.WriteString(strings.Join(rules, ""))
	err := run(context.Background(), []byte(script.String()), "ip", "netns", "exec", n.sw, "nft", "-f", "-")
	if err != nil && !n.nft {
		n.tb.Skipf("netsim: the kernel refuses nft bridge filtering: %v", err)
	}
	if err != nil {
		n.tb.Fatalf("netsim: cut %s/%s: %v", a.Name, b.Name, err)
	}
	n.nft = true
}

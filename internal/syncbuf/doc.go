// Package syncbuf owns Buffer, a bytes.Buffer that several goroutines may
// write to while another reads it: the log and output collector of tests
// and test helpers.
package syncbuf

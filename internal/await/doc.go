// Package await is the one polling helper of pushd's tests: wait for a
// condition with a deadline instead of sleeping for a guessed time.
package await

package registry

import (
	"fmt"

	"github.com/rs/zerolog"
)

// sdkLogger forwards the SDK's log lines at or above min to zerolog. The
// SDK's ERROR lines are mostly connection churn (and one on every clean
// close), so they arrive as warnings.
type sdkLogger struct {
	log zerolog.Logger
	min zerolog.Level
}

func newSDKLogger(log zerolog.Logger, level string) sdkLogger {
	min, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		min = zerolog.WarnLevel
	}
	return sdkLogger{log: log.With().Str("component", "nacos-sdk").Logger(), min: min}
}

func (l sdkLogger) emit(lvl, as zerolog.Level, msg func() string) {
	if lvl < l.min {
		return
	}
	l.log.WithLevel(as).Msg(msg())
}

func (l sdkLogger) Info(args ...interface{}) {
	l.emit(zerolog.InfoLevel, zerolog.InfoLevel, func() string { return fmt.Sprint(args...) })
}
func (l sdkLogger) Warn(args ...interface{}) {
	l.emit(zerolog.WarnLevel, zerolog.WarnLevel, func() string { return fmt.Sprint(args...) })
}
func (l sdkLogger) Error(args ...interface{}) {
	l.emit(zerolog.ErrorLevel, zerolog.WarnLevel, func() string { return fmt.Sprint(args...) })
}
func (l sdkLogger) Debug(args ...interface{}) {
	l.emit(zerolog.DebugLevel, zerolog.DebugLevel, func() string { return fmt.Sprint(args...) })
}
func (l sdkLogger) Infof(f string, args ...interface{}) {
	l.emit(zerolog.InfoLevel, zerolog.InfoLevel, func() string { return fmt.Sprintf(f, args...) })
}
func (l sdkLogger) Warnf(f string, args ...interface{}) {
	l.emit(zerolog.WarnLevel, zerolog.WarnLevel, func() string { return fmt.Sprintf(f, args...) })
}
func (l sdkLogger) Errorf(f string, args ...interface{}) {
	l.emit(zerolog.ErrorLevel, zerolog.WarnLevel, func() string { return fmt.Sprintf(f, args...) })
}
func (l sdkLogger) Debugf(f string, args ...interface{}) {
	l.emit(zerolog.DebugLevel, zerolog.DebugLevel, func() string { return fmt.Sprintf(f, args...) })
}

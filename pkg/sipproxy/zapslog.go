package sipproxy

import (
	"context"
	"log/slog"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// zapSlogHandler routes sipgo's slog output into zap. sipgo's Info level is
// chatty, so it is logged at zap Debug; Warn and Error keep their levels.
type zapSlogHandler struct {
	l     *zap.Logger
	attrs []zap.Field
	group string
}

func newZapSlogHandler(l *zap.Logger) *zapSlogHandler { return &zapSlogHandler{l: l} }

func zapLevel(l slog.Level) zapcore.Level {
	switch {
	case l >= slog.LevelError:
		return zapcore.ErrorLevel
	case l >= slog.LevelWarn:
		return zapcore.WarnLevel
	default:
		return zapcore.DebugLevel
	}
}

func (h *zapSlogHandler) Enabled(_ context.Context, l slog.Level) bool {
	return h.l.Core().Enabled(zapLevel(l))
}

func (h *zapSlogHandler) Handle(_ context.Context, r slog.Record) error {
	ce := h.l.Check(zapLevel(r.Level), r.Message)
	if ce == nil {
		return nil
	}
	fields := make([]zap.Field, 0, len(h.attrs)+r.NumAttrs())
	fields = append(fields, h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		fields = append(fields, h.field(a))
		return true
	})
	ce.Write(fields...)
	return nil
}

func (h *zapSlogHandler) field(a slog.Attr) zap.Field {
	key := a.Key
	if h.group != "" {
		key = h.group + "." + key
	}
	if a.Key == "data" {
		// sipgo puts a whole unparsable message under "data": log its
		// size only, a flood of junk must not fill the disk.
		return zap.Int(key+"_bytes", len(a.Value.Resolve().String()))
	}
	return zap.Any(key, a.Value.Resolve().Any())
}

func (h *zapSlogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := &zapSlogHandler{l: h.l, group: h.group, attrs: append([]zap.Field(nil), h.attrs...)}
	for _, a := range as {
		n.attrs = append(n.attrs, h.field(a))
	}
	return n
}

func (h *zapSlogHandler) WithGroup(name string) slog.Handler {
	g := name
	if h.group != "" {
		g = h.group + "." + name
	}
	return &zapSlogHandler{l: h.l, group: g, attrs: h.attrs}
}

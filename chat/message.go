package chat

import (
	"fmt"
	"slices"
)

// Roles a message may have.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Roles lists the roles a conversation may use, in the order errors name them.
func Roles() []string { return []string{RoleSystem, RoleUser, RoleAssistant} }

// Message is one turn of a conversation.
type Message struct {
	Role    string // RoleSystem, RoleUser or RoleAssistant
	Content string
	// NoLoss keeps an assistant turn out of the loss: it is context, as a
	// user turn is. JSONL "weight": 0 (OpenAI's fine-tuning format) sets
	// it, and so does the prompt part of a prompt-completion record.
	NoLoss bool
}

// Conversation is a list of messages with where it came from.
type Conversation struct {
	Messages []Message
	// Line is the 1-based line of the JSONL file it was read from (0 when
	// it was not read from a file).
	Line int
}

// Trained reports whether message i of c is an assistant turn that the
// loss covers.
func (c Conversation) Trained(i int) bool {
	m := c.Messages[i]
	return m.Role == RoleAssistant && !m.NoLoss
}

// Validate checks that c has messages, that each has a known role, and
// that at least one assistant turn is trained.
func (c Conversation) Validate() error {
	if len(c.Messages) == 0 {
		return fmt.Errorf("the conversation is empty (no messages)")
	}
	trained := false
	for i, m := range c.Messages {
		if !slices.Contains(Roles(), m.Role) {
			return fmt.Errorf("message %d: unknown role %q, want system, user or assistant", i+1, m.Role)
		}
		trained = trained || c.Trained(i)
	}
	if !trained {
		return fmt.Errorf("no assistant message to train on")
	}
	return nil
}

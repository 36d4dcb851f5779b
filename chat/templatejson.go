package chat

import (
	"encoding/json"
	"errors"
	"fmt"
)

// templateFromJSON reads the chat template of a tokenizer_config.json: a
// string, or a list of {name, template} of which "default" is used.
func templateFromJSON(b []byte) (string, error) {
	var c map[string]json.RawMessage
	if err := json.Unmarshal(b, &c); err != nil {
		return "", fmt.Errorf("not a JSON object: %w", err)
	}
	raw, ok := c["chat_template"]
	if !ok || string(raw) == "null" {
		return "", errors.New(`no "chat_template" key`)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var named []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(raw, &named); err != nil {
		return "", fmt.Errorf("chat_template: want a string or a list of {name, template}: %w", err)
	}
	for _, n := range named {
		if n.Name == "default" {
			return n.Template, nil
		}
	}
	return "", errors.New(`chat_template: the list has no "default" template`)
}

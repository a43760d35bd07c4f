package cmd

import (
	"errors"

	"github.com/spf13/cobra"
)

// NewCmdModels builds the `models` command.
func NewCmdModels(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "models",
		Short: "not implemented yet",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("models: not implemented yet")
		},
	}
}

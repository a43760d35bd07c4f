package cmd

import (
	"errors"

	"github.com/spf13/cobra"
)

// NewCmdEstimate builds the `estimate` command.
func NewCmdEstimate(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "estimate",
		Short: "not implemented yet",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("estimate: not implemented yet")
		},
	}
}

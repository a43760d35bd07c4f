package cmd

import (
	"errors"

	"github.com/spf13/cobra"
)

// NewCmdSim builds the `sim` command.
func NewCmdSim(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "sim",
		Short: "not implemented yet",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("sim: not implemented yet")
		},
	}
}

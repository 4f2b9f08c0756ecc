"""``python tests/support/moto_cfn_server.py -H HOST -p PORT``: moto's server, with one CloudFormation fix.

moto 5.2.5 applies an executed change set's resources but keeps the stack's outputs (and parameters)
from before it: a stack created through a change set reports no outputs at all. AWS refreshes both.
deploy/stack.py works only through change sets, so this server recomputes them after ExecuteChangeSet;
everything else is moto as shipped.
"""

from __future__ import annotations

import sys

from moto.cloudformation.models import CloudFormationBackend
from moto.server import main

_execute = CloudFormationBackend.execute_change_set


def _execute_and_refresh(self, change_set_name, stack_name=None):
    _execute(self, change_set_name, stack_name)
    change_set = self.change_sets.get(change_set_name) or next(
        c for c in self.change_sets.values() if change_set_name in (c.change_set_name, c.change_set_id)
    )
    stack = self.stacks[change_set.stack_id]
    stack.parameters = change_set.parameters
    stack._parse_template()
    stack.output_map = stack._create_output_map()


CloudFormationBackend.execute_change_set = _execute_and_refresh

if __name__ == "__main__":
    sys.exit(main())

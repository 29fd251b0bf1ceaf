"""Random sequences of add, get, delete and expiry against a plain model of the state."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from dbdaora import EntityNotFoundError, Session
from dbdaora.backends import DictFallback
from tests.support.models import Person, Ranking
from tests.support.raw import RawView

ids = st.sampled_from(["a", "b", "c", "d"])
names = st.text(min_size=0, max_size=8)
ages = st.integers(min_value=-(2**63), max_value=2**63 - 1)
players = st.sampled_from(["p1", "p2", "p3"])
scores = st.floats(allow_nan=False, allow_infinity=False, width=32)


def make_machine(store: Any, raw: RawView) -> type[RuleBasedStateMachine]:
    class Machine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            for key in raw.all_keys():
                raw.delete(key)
            self.session = Session(memory=store, fallback=DictFallback())
            self.people = Person.objects.using(self.session)
            self.rankings = Ranking.objects.using(self.session)
            self.expected: dict[str, Person] = {}
            self.boards: dict[str, dict[str, float]] = {}

        def run(self, coroutine: Any) -> Any:
            return self.loop.run_until_complete(coroutine)

        def teardown(self) -> None:
            self.run(self.session.close())
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

        @rule(id_=ids, name=names, age=ages)
        def add(self, id_: str, name: str, age: int) -> None:
            person = Person(id=id_, name=name, age=age)
            self.run(self.people.add(person))
            self.expected[id_] = person

        @rule(id_=ids)
        def get(self, id_: str) -> None:
            if id_ in self.expected:
                assert self.run(self.people.get(id_)) == self.expected[id_]
            else:
                with pytest.raises(EntityNotFoundError):
                    self.run(self.people.get(id_))

        @rule(id_=ids)
        def get_name(self, id_: str) -> None:
            if id_ in self.expected:
                assert (
                    self.run(self.people.get(id_, fields=["name"])).name == self.expected[id_].name
                )

        @rule(many=st.lists(ids, max_size=5))
        def get_many(self, many: list[str]) -> None:
            found = self.run(self.people.get_many(many))
            assert found == [self.expected[i] for i in many if i in self.expected]

        @rule(id_=ids)
        def delete(self, id_: str) -> None:
            self.run(self.people.delete(id_))
            self.expected.pop(id_, None)

        @rule(id_=ids)
        def expire(self, id_: str) -> None:
            raw.delete(f"person:{id_}".encode())
            raw.delete(f"person:not-found:{id_}".encode())

        @rule(id_=ids)
        def exists(self, id_: str) -> None:
            assert self.run(self.people.exists(id_)) == (id_ in self.expected)

        @rule(board=ids, player=players, score=scores)
        def add_member(self, board: str, player: str, score: float) -> None:
            self.run(self.rankings.add(Ranking(board=board, player=player, points=score)))
            self.boards.setdefault(board, {})[player] = score

        @rule(board=ids, player=players)
        def remove_member(self, board: str, player: str) -> None:
            self.run(self.rankings.remove(board, player))
            if board in self.boards:
                self.boards[board].pop(player, None)

        @rule(board=ids)
        def expire_board(self, board: str) -> None:
            raw.delete(f"ranking:{board}".encode())

        @rule(board=ids)
        def read_board(self, board: str) -> None:
            members = self.boards.get(board)
            if not members:
                with pytest.raises(EntityNotFoundError):
                    self.run(self.rankings.get(board))
                return
            got = self.run(self.rankings.get(board))
            assert sorted((r.player, r.points) for r in got) == sorted(members.items())

        @invariant()
        def redis_never_disagrees(self) -> None:
            for id_ in ("a", "b", "c", "d"):
                stored = raw.hgetall(f"person:{id_}".encode())
                if stored:
                    assert id_ in self.expected
                    assert stored[b"name"] == self.expected[id_].name.encode()

    return Machine


def test_random_sequences(backend: tuple[Any, RawView]) -> None:
    """Whatever the order of operations and expiries, reads answer the acknowledged state."""
    store, raw = backend
    machine = make_machine(store, raw)
    run_state_machine_as_test(
        machine,
        settings=hypothesis_settings(max_examples=60, stateful_step_count=30, deadline=None),
    )

"""EpisodeFlags: stale end-of-episode messages of the last episode never end the next one."""

from vla_ros.episode import EpisodeFlags


def test_a_stale_done_after_the_reset_is_ignored_until_the_new_episode_speaks():
    flags = EpisodeFlags()
    for value in (False, False, True):      # the first episode runs and ends, successful at its last step
        flags.on_success(value)
        flags.on_done(value)
    assert flags.done and flags.success
    flags.restart()                          # reset: the old episode's Trues may still be queued
    flags.on_done(True)
    flags.on_success(True)
    assert not flags.done and not flags.success
    flags.on_done(False)                     # the new episode's first step
    flags.on_success(False)
    flags.on_success(True)                   # it succeeds at its end
    flags.on_done(True)
    assert flags.done and flags.success


def test_a_failed_episode_ends_unsuccessful():
    flags = EpisodeFlags()
    flags.on_success(False)
    flags.on_done(False)
    flags.on_done(True)
    assert flags.done and not flags.success

"""Every callback_id, action_id and block_id in one place, so listeners and renderers agree."""

from enum import StrEnum


class Callback(StrEnum):
    FEEDBACK_MODAL = "feedback_modal"
    FEEDBACK_SHORTCUT = "capture_feedback"
    ANNOUNCE_MODAL = "announce_modal"
    DECISION_MODAL = "decision_modal"
    LINK_DECISION_MODAL = "link_decision_modal"
    FEEDBACK_SEARCH_MODAL = "feedback_search_modal"
    FEEDBACK_SEARCH_RESULTS = "feedback_search_results"


class Action(StrEnum):
    FEEDBACK_DETAILS = "feedback_details"
    FEEDBACK_LINK_DECISION = "feedback_link_decision"
    FEEDBACK_ACCOUNT_CONFIRM = "feedback_account_confirm"
    FEEDBACK_CAPTURE_INSTEAD = "feedback_capture_instead"
    FEEDBACK_MERGE = "feedback_merge"
    FEEDBACK_KEEP_SEPARATE = "feedback_keep_separate"
    FEEDBACK_UNDO_MERGE = "feedback_undo_merge"
    FEEDBACK_SEARCH_PAGE = "feedback_search_page"
    FEEDBACK_SEARCH_OPEN = "feedback_search_open"
    ANNOUNCE_EDIT = "announce_edit"
    ANNOUNCE_RETRACT = "announce_retract"
    ANNOUNCE_CANCEL = "announce_cancel"
    ANNOUNCE_ACK = "announce_ack"
    DECISION_STATUS = "decision_status"  # prefix: decision_status:<status>
    DECISION_OVERFLOW = "decision_overflow"
    LOOP_REPLY = "loop_reply"
    HOME_REFRESH = "home_refresh"


class Block(StrEnum):
    FB_TEXT = "fb_text"
    FB_CUSTOMER = "fb_customer"
    FB_ARR = "fb_arr"
    FB_AREA = "fb_area"
    FB_KIND = "fb_kind"
    FB_DECISION = "fb_decision"
    FB_SEARCH = "fb_search"
    AN_TITLE = "an_title"
    AN_BODY = "an_body"
    AN_AREAS = "an_areas"
    AN_SEND_AT = "an_send_at"
    AN_DECISIONS = "an_decisions"

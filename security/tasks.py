from celery import shared_task


@shared_task(name="security.file_integrity_check")
def file_integrity_check() -> int:
    from security.integrity import check

    return len(check())
